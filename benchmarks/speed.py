"""Speed side by side with torch.nn on the CPU (the same as `rnnlab bench`).

    python benchmarks/speed.py [--repeats N] [--json]

Prints, per row, the time of one training step (or of sampling 1,000 characters),
characters per second, achieved GFLOP/s, the ratio to torch.nn measured in the same
process, and the share of the float32 GEMM peak measured on the spot.
"""
import sys

from rnnlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
