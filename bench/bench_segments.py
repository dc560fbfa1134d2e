"""Measure analyze() throughput in messages per second on 1,000-character mixed and GSM-7 texts."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from smsrelay.domain.segments import analyze

LENGTH = 1_000
GSM_WORDS = (
    "Your",
    "order",
    "#4821",
    "ships",
    "today",
    "{tracking}",
    "reply",
    "STOP",
    "€5",
    "Ñoño",
)
UCS2_WORDS = ("façade", "Привет", "naïve", "“quoted”", "don’t", "日本語")
EMOJI = ("😀", "👍🏽", "🇮🇹", "👨\u200d👩\u200d👧\u200d👦", "❤️", "1\ufe0f\u20e3")


def build_text(vocabulary: Sequence[str], rng: random.Random) -> str:
    """Random words from ``vocabulary`` joined by spaces, cut to LENGTH code points."""
    words: list[str] = []
    while sum(len(word) + 1 for word in words) < LENGTH:
        words.append(rng.choice(vocabulary))
    return " ".join(words)[:LENGTH]


def messages_per_second(text: str, seconds: float = 2.0) -> float:
    """Call analyze(text) repeatedly for about ``seconds`` and return calls per second."""
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(50):
            analyze(text)
        calls += 50
    return calls / elapsed


def main() -> None:
    rng = random.Random(20_240_601)
    mixed_vocabulary = GSM_WORDS * 6 + UCS2_WORDS + EMOJI
    texts = {
        "mixed (GSM + UCS-2 + emoji)": build_text(mixed_vocabulary, rng),
        "pure GSM-7": build_text(GSM_WORDS, rng),
    }
    for label, text in texts.items():
        info = analyze(text)
        rate = messages_per_second(text)
        print(
            f"{label:28} {len(text):5} chars  {info.encoding}  {info.segments:2} segments  "
            f"{rate:10,.0f} messages/s"
        )


if __name__ == "__main__":
    main()
