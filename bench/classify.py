"""Incident classification throughput: ``classify()`` against bare jieba segmentation of the same texts.

The baseline is what any jieba-based classifier must pay (cutting the text into words); the
ratio says what the lexicon scoring, police cues and evidence add on top. Single thread, CPU time.

    .venv/bin/python bench/classify.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jieba

from eqian.incidents.classifier import Classifier, load_lexicon, read_samples


def rate(fn: object, texts: list[str], seconds: float) -> float:
    assert callable(fn)
    for text in texts:  # warm-up
        fn(text)
    done = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        for text in texts:
            fn(text)
        done += len(texts)
    return done / (time.process_time() - cpu0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 s per measurement instead of 5 s")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 5.0

    cpu0 = time.process_time()
    engine = Classifier(load_lexicon())
    build_cpu_s = time.process_time() - cpu0
    texts = [s.text for s in read_samples()]
    jieba.setLogLevel(60)
    jieba.initialize()

    subject = rate(engine.classify, texts, seconds)
    baseline = rate(jieba.lcut, texts, seconds)
    avg_chars = sum(map(len, texts)) / len(texts)
    print(f"{len(texts)} labelled descriptions, {avg_chars:.1f} characters on average")
    print(f"classifier first build: {build_cpu_s:.2f} s CPU")
    print(f"classify(): {subject:,.0f}/s CPU ({1e6 / subject:.0f} µs each)")
    print(
        f"baseline jieba.lcut(): {baseline:,.0f}/s CPU; classify costs {baseline / subject:.1f}× a bare cut"
    )
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(
        json.dumps(
            {
                "texts": len(texts),
                "per_s": round(subject),
                "us_each": round(1e6 / subject),
                "baseline_per_s": round(baseline),
                "ratio": round(baseline / subject, 2),
                "build_cpu_s": round(build_cpu_s, 2),
                "loadavg": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
