"""``rnnlab explore RUN [TEXT]``: write the explorer page (rnnlab/explore) and say where."""
from __future__ import annotations

import json


def cmd_explore(args):
    from ..explore import printable, explore
    info = explore(args.checkpoint, args.text, args.out, max_chars=args.max_chars, encoding=args.encoding)
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"{info['chars']:,} characters of {printable(info['source'])}"
          + (f" ({info['oov']} outside the vocabulary dropped)" if info["oov"] else "")
          + (f", {info['mean_bits']:.3f} bits/char" if info["mean_bits"] is not None else ""))
    print(f"wrote {printable(info['out'])} ({info['bytes'] / 1e6:.1f} MB); open it in a browser")
    return 0
