"""The options shared by ``rnnlab eval`` and ``rnnlab sample`` that adapt a model to
text: dynamic evaluation (``--dynamic``, which needs the training text for its gradient
statistics, kept beside the checkpoint once gathered: models/stats_cache.py) and mixing
with the run's n-gram (``--mix-ngram``)."""
from __future__ import annotations

import os

from .usage import UsageError


def training_text(args, model):
    """The text the model was trained on: --train-text, else the file (or the default
    corpus) its checkpoint names — read in the encoding the run read it in (--encoding is
    the scored text's or the prime's). Refused when the checkpoint records the training
    text's fingerprint and this text has another (a wrong --train-text, or a file edited
    since the run, would give statistics of another text, kept beside the checkpoint),
    as --mix-ngram refuses an n-gram counted on another text."""
    from ..data.corpus import default_corpus
    from ..data.text import read_text, text_fingerprint
    from ..models.charlm_io import training_encoding
    source = model.meta.get("text_source")
    if args.train_text:
        text, name = read_text(args.train_text, training_encoding(model.meta)), f"--train-text {args.train_text}"
    elif source and source.startswith("default:"):
        text, name = default_corpus(), "the default corpus"
    elif source and os.path.isfile(source):
        text, name = read_text(source, training_encoding(model.meta)), f"the run's text {source}"
    else:
        raise UsageError("--dynamic needs the training text for its gradient statistics and the run's is not "
                         "at hand; pass --train-text FILE")
    recorded = model.meta.get("text_fingerprint")
    if recorded is not None and recorded != text_fingerprint(text):
        raise UsageError(f"--dynamic: {name} is not the text this model was trained on (it has changed, or it "
                         f"is another file); its gradient statistics must come from the training text")
    return text


def dynamic_options(args):
    """(dyn_lr, dyn_decay, dyn_seg) as given, None where not (CharLM takes scoring.py's
    defaults there); UsageError for one of them or --train-text given without --dynamic
    (it would change nothing, silently)."""
    given = [flag for flag, v in (("--dyn-lr", args.dyn_lr), ("--dyn-decay", args.dyn_decay),
                                  ("--dyn-seg", args.dyn_seg), ("--train-text", args.train_text)) if v is not None]
    if given and not args.dynamic:
        raise UsageError(f"{given[0]} applies to dynamic evaluation: add --dynamic, or drop it")
    return args.dyn_lr, args.dyn_decay, args.dyn_seg


def mixture(args, model, checkpoint):
    """The run's NgramMixture when --mix-ngram is given, else None."""
    if not args.mix_ngram:
        return None
    from ..models.mixing import FILE, NgramMixture
    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), FILE)
    if not os.path.isfile(path):
        raise UsageError(f"--mix-ngram: no {FILE} beside {checkpoint}; train with --ngram N to make one")
    return NgramMixture.load(path, model.vocab.chars).for_model(model, path, refit=not args.dynamic)


def evaluate(args, model, checkpoint, text):
    """model.evaluate with the adaptation options."""
    from ..models.stats_cache import path_for
    lr, decay, seg = dynamic_options(args)
    dyn = dict(train_text=training_text(args, model), dyn_lr=lr, dyn_decay=decay, dyn_seg=seg,
               stats_cache=path_for(checkpoint)) if args.dynamic else {}
    return model.evaluate(text, dynamic=args.dynamic, mixture=mixture(args, model, checkpoint), **dyn)


def adapt_to_prime(args, model, checkpoint, prime):
    """The mixture to sample from (``mixture``; None without --mix-ngram), and with
    --dynamic the weights adapted to the prime (kept) and the mixture adapted with them
    (CharLM.adapt_to). The options and the prime are checked before the n-gram is read."""
    lr, decay, seg = dynamic_options(args)
    if args.dynamic and len(prime) < 2:
        raise UsageError("--dynamic adapts to the prime: give --prime (two characters or more)")
    mix = mixture(args, model, checkpoint)
    if not args.dynamic:
        return mix
    from ..models.stats_cache import path_for
    return model.adapt_to(prime, train_text=training_text(args, model), mixture=mix, dyn_lr=lr, dyn_decay=decay,
                          dyn_seg=seg, stats_cache=path_for(checkpoint))
