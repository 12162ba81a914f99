"""The options shared by ``rnnlab eval`` and ``rnnlab sample`` that adapt a model to
text: dynamic evaluation (``--dynamic``, which needs the training text for its gradient
statistics, kept beside the checkpoint once gathered: models/stats_cache.py) and mixing
with the run's n-gram (``--mix-ngram``)."""
from __future__ import annotations

import os

from .usage import UsageError


def training_text(args, model):
    """The text the model was trained on: --train-text, else the file (or the default
    corpus) its checkpoint names."""
    from ..data.corpus import default_corpus
    from ..data.text import read_text
    if args.train_text:
        return read_text(args.train_text, args.encoding)
    source = model.meta.get("text_source")
    if source and source.startswith("default:"):
        return default_corpus()
    if source and os.path.isfile(source):
        return read_text(source, args.encoding)
    raise UsageError("--dynamic needs the training text for its gradient statistics and the run's is not "
                     "at hand; pass --train-text FILE")


def mixture(args, model, checkpoint):
    """The run's NgramMixture when --mix-ngram is given, else None."""
    if not args.mix_ngram:
        return None
    from ..models.mixing import FILE, NgramMixture
    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), FILE)
    if not os.path.isfile(path):
        raise UsageError(f"--mix-ngram: no {FILE} beside {checkpoint}; train with --ngram N to make one")
    return NgramMixture.load(path, model.vocab.chars)


def evaluate(args, model, checkpoint, text):
    """model.evaluate with the adaptation options."""
    from ..models.stats_cache import path_for
    train = training_text(args, model) if args.dynamic else None
    return model.evaluate(text, dynamic=args.dynamic, train_text=train, mixture=mixture(args, model, checkpoint),
                          dyn_lr=args.dyn_lr, dyn_decay=args.dyn_decay, dyn_seg=args.dyn_seg,
                          stats_cache=path_for(checkpoint))


def adapt_to_prime(args, model, checkpoint, prime):
    """With --dynamic: the weights after dynamic evaluation over the prime (kept)."""
    if not args.dynamic:
        return
    if len(prime) < 2:
        raise UsageError("--dynamic adapts to the prime: give --prime (two characters or more)")
    from ..models.scoring import check_dynamic, dynamic_logprobs
    from ..models.stats_cache import path_for
    check_dynamic(args.dyn_lr, args.dyn_decay, args.dyn_seg)
    stats = model.gradient_stats(training_text(args, model), args.dyn_seg, cache=path_for(checkpoint))
    dynamic_logprobs(model, model.vocab.encode(prime), stats, lr=args.dyn_lr, decay=args.dyn_decay,
                     seg_len=args.dyn_seg, streams=1, restore=False)
