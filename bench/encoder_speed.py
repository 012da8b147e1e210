"""How fast a transformer encoder classifies an abstract on one core (for issue 12's speed bar).

Usage:
    python bench/encoder_speed.py [--tokens N] [--batch B]

The best published systems for multi-label topic classification of biomedical abstracts are
pretrained transformers (REFERENCE.md §4). This times one forward pass of a BERT-base-sized
encoder (the size of PubMedBERT and BioBERT) and of a 4-layer, 312-wide one (TinyBERT's
size) over abstracts of ``--tokens`` word pieces, on one thread, with randomly initialised
weights: the arithmetic, and so the time, is the same as with pretrained ones, which cannot
be downloaded here. Needs ``torch`` and ``transformers`` (not project dependencies); exits 0
with a message without them.
"""

from __future__ import annotations

import argparse
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=384)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    try:
        import torch
        from transformers import BertConfig, BertForSequenceClassification
    except ImportError:
        print("skipped: needs torch and transformers (pip install torch transformers)")
        return 0
    torch.set_num_threads(1)
    sizes = {
        "BERT-base size (12 layers, 768 wide)": BertConfig(num_labels=4),
        "TinyBERT size (4 layers, 312 wide)": BertConfig(
            num_labels=4, num_hidden_layers=4, hidden_size=312, num_attention_heads=12,
            intermediate_size=1200),
    }
    for name, config in sizes.items():
        model = BertForSequenceClassification(config).eval()
        ids = torch.randint(1000, 20000, (args.batch, args.tokens))
        with torch.inference_mode():
            model(input_ids=ids)  # warm-up
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                model(input_ids=ids)
                best = min(best, time.perf_counter() - start)
        each = best / args.batch
        print(f"{name}: {each * 1000:.1f} ms an abstract of {args.tokens} tokens "
              f"({1 / each:,.1f}/s, one thread, batch {args.batch})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
