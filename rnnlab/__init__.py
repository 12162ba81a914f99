"""rnnlab — recurrent neural networks from scratch on NumPy, with hand-written
backpropagation through time, checked against finite differences and PyTorch."""
from .activations import relu, sigmoid, softmax, tanh
from .cells import GRUCell, LSTMCell, RNNCell
from .gradcheck import gradcheck
from .jordan import JordanRNN
from .models import CharLM, CharLMConfig
from .ngram import KneserNeyLM
from .layers import Dropout, Embedding, Linear, ReLU, Sequential, Sigmoid, Softmax, Tanh, summary
from .losses import bce_with_logits, mse, softmax_cross_entropy
from .module import Module
from .optim import (SGD, Adagrad, Adam, DecaySchedule, Momentum, RMSProp, clip_by_value,
                    clip_grad_norm, make_optimizer)
from .recurrent import GRU, LSTM, RNN

__version__ = "0.1.0"

__all__ = [
    "tanh", "sigmoid", "relu", "softmax",
    "mse", "softmax_cross_entropy", "bce_with_logits",
    "Module", "Linear", "Tanh", "Sigmoid", "ReLU", "Softmax", "Dropout", "Embedding",
    "Sequential", "summary",
    "RNN", "LSTM", "GRU", "JordanRNN", "RNNCell", "LSTMCell", "GRUCell",
    "SGD", "Momentum", "Adagrad", "RMSProp", "Adam", "make_optimizer",
    "clip_by_value", "clip_grad_norm", "DecaySchedule",
    "gradcheck",
    "CharLM", "CharLMConfig", "KneserNeyLM",
]
