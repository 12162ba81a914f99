"""Data: text vocabularies and batching (``text``), the default corpus (``corpus``)."""
from .corpus import default_corpus
from .text import Vocab, char_batches, read_text, split_train_val

__all__ = ["Vocab", "read_text", "split_train_val", "char_batches", "default_corpus"]
