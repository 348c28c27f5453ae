"""Feedback text analysis in Chinese and English, evaluated against the majority class."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from kequn.analytics.feedback_text import (
    count_top_keywords,
    detect_language,
    evaluate_text_classifier,
    find_topics,
    score_sentiment,
    tokenize,
)


def test_language_words_and_sentiment():
    assert detect_language("物流很快，客服也耐心") == "zh"
    assert detect_language("Delivery was fast") == "en"
    assert "物流" in tokenize("物流很快，客服也耐心") and "的" not in tokenize("我的订单")
    assert score_sentiment("非常满意，推荐！") > 0.3
    assert score_sentiment("包装破损，很失望") < -0.3
    assert score_sentiment("不太满意") < 0  # negation flips
    assert score_sentiment("not good at all") < 0
    assert score_sentiment("The parcel arrived on Tuesday") == 0


COMPLAINTS = {
    "delivery": ["快递太慢了", "物流延迟一周", "配送迟到", "delivery was late", "parcel delayed"],
    "quality": ["屏幕有坏点", "电池不耐用", "质量太差", "screen broken", "battery died"],
    "refund": [
        "退款还没到账",
        "申请退货没人处理",
        "退款太慢",
        "refund not received",
        "money back please",
    ],
}


def make_tickets(seed: int, n: int = 240) -> tuple[list[str], list[str], list[datetime]]:
    rng = random.Random(seed)
    texts, labels, times = [], [], []
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(n):
        # An uneven mix, as in real queues: the majority class is a strong baseline.
        label = rng.choices(list(COMPLAINTS), weights=[5, 3, 2])[0]
        phrase = rng.choice(COMPLAINTS[label])
        noise = rng.choice(["", "，请尽快处理", " please help", "，订单号 D-1001", "!!"])
        texts.append(phrase + noise)
        labels.append(label)
        times.append(start + timedelta(hours=i))
    return texts, labels, times


def test_classifier_beats_the_majority_on_a_later_slice():
    for seed in (1, 2, 3):
        texts, labels, times = make_tickets(seed)
        ev = evaluate_text_classifier(texts, labels, times)
        assert ev.n_test == 48 and ev.majority == "delivery"
        assert ev.baseline_macro_f1 < 0.3
        assert ev.macro_f1 > 0.9 and ev.beats_baseline


def test_classifier_on_text_unrelated_to_the_label_does_not_beat_the_baseline():
    texts, _labels, times = make_tickets(4)
    rng = random.Random(5)
    noise_labels = [rng.choices(["a", "b"], weights=[4, 1])[0] for _ in texts]
    ev = evaluate_text_classifier(texts, noise_labels, times)
    assert not ev.beats_baseline or ev.macro_f1 - ev.baseline_macro_f1 < 0.25


TOPICS = {
    "delivery": ["快递太慢了", "快递延迟一周", "快递配送迟到", "快递员态度差", "快递丢件"],
    "screen": ["屏幕有坏点", "屏幕碎了", "屏幕质量太差", "屏幕闪烁", "屏幕发黄"],
    "refund": ["退款还没到账", "退款没人处理", "退款太慢", "申请退款被拒", "退款金额不对"],
}


def test_topics_and_keywords_group_the_complaints():
    rng = random.Random(6)
    labels = [rng.choice(list(TOPICS)) for _ in range(120)]
    texts = [rng.choice(TOPICS[label]) + rng.choice(["", "，请尽快处理", "！"]) for label in labels]
    topics = find_topics(texts, n_topics=3)
    assert len(topics.words) == 3
    # Each found topic is dominated by one kind of complaint.
    for topic in range(3):
        members = [labels[i] for i, t in enumerate(topics.assignment) if t == topic]
        if members:
            top = max(set(members), key=members.count)
            assert members.count(top) / len(members) > 0.6
    top_words = dict(count_top_keywords(texts, 30))
    assert top_words.get("退款", 0) > 0
