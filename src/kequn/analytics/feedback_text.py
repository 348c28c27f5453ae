"""Feedback text in Chinese and English: language, words, sentiment, keywords, topics, classes.

Pure: lists of strings in, numbers and lists out. Chinese is cut into words by jieba (its
dictionary ships in the package); English by a word pattern. The sentiment is a lexicon score
with negation and intensity, so it needs no training data and no download; the classifier
(ticket type, queue) is trained on the business's own labelled texts and evaluated on a
held-out later slice against the majority class.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_WORD = re.compile(r"[a-z][a-z'\-]+")
PUNCTUATION = re.compile(r"^[\W_]+$")


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _word_set(
    """
    the a an and or but if of to in on at for with is are was were be been it this that these
    those i me my we our you your he she they them his her its as by from not no so very too
    just than then there here have has had do does did will would can could should all any
    的 了 和 是 在 我 有 也 就 都 而 及 与 着 或 一个 没有 我们 你们 他们 她们 它 这 那 这个
    那个 啊 吧 呢 吗 嗯 哦 很 还 又 再 把 被 让 给 对 从 到 说 要 会 能 去 来 上 下 里 中
    """
)

POSITIVE = _word_set(
    """
    good great excellent love loved like liked happy satisfied fast quick helpful friendly
    easy perfect recommend nice awesome amazing wonderful best polite patient smooth fine
    好 很好 不错 满意 喜欢 推荐 快 及时 耐心 热情 专业 方便 优秀 完美 好用 值得 感谢 谢谢
    舒服 清楚 高效 靠谱 划算 实惠 精美 稳定 流畅 贴心 周到 漂亮 新鲜 超值 给力 点赞 棒
    """
)
NEGATIVE = _word_set(
    """
    bad poor terrible awful hate slow late broken rude angry disappointed refund wrong worst
    expensive difficult problem issue damaged missing never cheated useless dirty delay delayed
    差 很差 慢 太慢 失望 不满 生气 投诉 退货 退款 坏 坏了 破损 损坏 延迟 迟到 态度差 敷衍
    垃圾 骗 欺骗 麻烦 难用 故障 问题 缺货 漏发 错发 贵 太贵 不好 糟糕 恶劣 没人 不理 拖延
    """
)
NEGATIONS = _word_set(
    "not no never don't didn't isn't wasn't cannot can't 不 没 没有 别 未 无 非 不太 不够 并不 不是 没什么"
)
INTENSIFIERS = {
    "very": 1.5, "really": 1.5, "extremely": 2.0, "so": 1.3, "too": 1.3,
    "很": 1.5, "非常": 2.0, "特别": 1.8, "太": 1.6, "十分": 1.8, "超级": 2.0, "真": 1.4,
}  # fmt: skip

_jieba: Any = None


def _get_jieba() -> Any:
    global _jieba
    if _jieba is None:
        import jieba  # noqa: PLC0415 -- loading its dictionary takes a second: only when needed

        jieba.setLogLevel(logging.WARNING)
        _jieba = jieba
    return _jieba


def detect_language(text: str) -> str:
    """Return "zh" when Chinese characters make up a fair share of the letters, else "en"."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return ""
    chinese = sum(1 for c in letters if CJK.match(c))
    return "zh" if chinese / len(letters) >= 0.3 else "en"


def cut_words(text: str) -> list[str]:
    """Return the text's words in order (Chinese cut by jieba), lower case, punctuation dropped."""
    text = text.lower()
    words: list[str] = []
    if CJK.search(text):
        for token in _get_jieba().lcut(text):
            token = token.strip()
            if token and not PUNCTUATION.match(token):
                words.append(token)
    else:
        words = ENGLISH_WORD.findall(text)
    return words


def tokenize(text: str) -> list[str]:
    """Return the words that carry meaning (no stop words, no single Latin letters)."""
    return [w for w in cut_words(text) if w not in STOPWORDS and not w.isdigit()]


def score_sentiment(text: str) -> float:
    """Return the text's sentiment between -1 (negative) and 1 (positive); 0 when unknown.

    Lexicon words count +1 or -1; a negation within the two words before flips the sign and an
    intensifier just before scales it. The sum is squashed by s / (|s| + 2).
    """
    words = cut_words(text)
    total = 0.0
    for i, word in enumerate(words):
        polarity = 1.0 if word in POSITIVE else -1.0 if word in NEGATIVE else 0.0
        if not polarity and len(word) > 1 and CJK.match(word):
            # jieba keeps some phrases whole ("不太满意"): look for lexicon words inside.
            polarity = _score_phrase(word)
        if not polarity:
            continue
        before = words[max(0, i - 2) : i]
        if any(w in NEGATIONS for w in before):
            polarity = -polarity
        if before and before[-1] in INTENSIFIERS:
            polarity *= INTENSIFIERS[before[-1]]
        total += polarity
    return total / (abs(total) + 2.0)


def _score_phrase(phrase: str) -> float:
    for size in (3, 2, 1):
        for start in range(len(phrase) - size + 1):
            part = phrase[start : start + size]
            if part in POSITIVE or part in NEGATIVE:
                negated = any(n in phrase[:start] for n in ("不", "没", "未", "无"))
                value = 1.0 if part in POSITIVE else -1.0
                return -value if negated else value
    return 0.0


def extract_keywords(texts: Sequence[str], top_n: int = 5) -> list[list[str]]:
    """Return each text's top words by TF-IDF over the whole collection."""
    documents = [tokenize(t) for t in texts]
    frequency = Counter(w for doc in documents for w in set(doc))
    n = len(documents)
    result = []
    for doc in documents:
        counts = Counter(doc)
        weights = {w: c * (np.log((1 + n) / (1 + frequency[w])) + 1.0) for w, c in counts.items()}
        result.append(
            [w for w, _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))][:top_n]
        )
    return result


def count_top_keywords(texts: Sequence[str], top_n: int = 20) -> list[tuple[str, int]]:
    """Return the words most texts mention, with how many texts mention each."""
    counts = Counter(w for t in texts for w in set(tokenize(t)))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]


@dataclass(frozen=True)
class Topics:
    """Topics found in a collection: their top words and each text's topic (-1: none)."""

    words: list[list[str]]
    assignment: list[int]


def find_topics(texts: Sequence[str], n_topics: int = 5, top_words: int = 5) -> Topics:
    """Group texts into topics by non-negative factorisation of their TF-IDF matrix."""
    from sklearn.decomposition import NMF  # noqa: PLC0415 -- scikit-learn only for this job
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415 -- same

    documents = [" ".join(tokenize(t)) for t in texts]
    if sum(1 for d in documents if d) < 2:
        return Topics([], [-1] * len(texts))
    vectorizer = TfidfVectorizer(analyzer=str.split, min_df=2 if len(texts) >= 20 else 1)
    try:
        matrix = vectorizer.fit_transform(documents)
    except ValueError:  # no word appears often enough
        return Topics([], [-1] * len(texts))
    k = max(1, min(n_topics, matrix.shape[0] - 1, matrix.shape[1]))
    model = NMF(n_components=k, init="nndsvda", random_state=0, max_iter=400)
    weights = model.fit_transform(matrix)
    vocabulary = vectorizer.get_feature_names_out()
    words = [
        [str(vocabulary[i]) for i in row.argsort()[::-1][:top_words]] for row in model.components_
    ]
    assignment = [int(row.argmax()) if row.max() > 0 else -1 for row in weights]
    return Topics(words, assignment)


@dataclass(frozen=True)
class Evaluation:
    """A classifier's held-out scores next to the majority-class baseline's."""

    n_train: int
    n_test: int
    accuracy: float
    macro_f1: float
    baseline_accuracy: float
    baseline_macro_f1: float
    majority: str

    @property
    def beats_baseline(self) -> bool:
        return self.macro_f1 > self.baseline_macro_f1 and self.accuracy >= self.baseline_accuracy


def train_text_classifier(texts: Sequence[str], labels: Sequence[str]) -> Any:
    """Return a fitted classifier (TF-IDF words and character pairs, logistic regression)."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415 -- on demand
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 -- on demand
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415 -- on demand

    model = make_pipeline(
        TfidfVectorizer(tokenizer=tokenize, token_pattern=None, lowercase=False, sublinear_tf=True),
        LogisticRegression(max_iter=1000, class_weight="balanced"),
    )
    model.fit(list(texts), list(labels))
    return model


def evaluate_text_classifier(
    texts: Sequence[str], labels: Sequence[str], order: Sequence[Any], test_share: float = 0.2
) -> Evaluation:
    """Train on the earlier texts (by order, e.g. closing time) and score the later slice."""
    from sklearn.metrics import accuracy_score, f1_score  # noqa: PLC0415 -- on demand

    ranked = sorted(range(len(texts)), key=lambda i: order[i])
    cut = round(len(ranked) * (1 - test_share))
    train, test = ranked[:cut], ranked[cut:]
    train_labels = [labels[i] for i in train]
    if not test or len(set(train_labels)) < 2:
        raise ValueError("need at least two classes before the held-out slice and texts after it")
    majority = Counter(train_labels).most_common(1)[0][0]
    model = train_text_classifier([texts[i] for i in train], train_labels)
    truth = [labels[i] for i in test]
    predicted = list(model.predict([texts[i] for i in test]))
    baseline = [majority] * len(test)
    return Evaluation(
        n_train=len(train),
        n_test=len(test),
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(f1_score(truth, predicted, average="macro", zero_division=0)),
        baseline_accuracy=float(accuracy_score(truth, baseline)),
        baseline_macro_f1=float(f1_score(truth, baseline, average="macro", zero_division=0)),
        majority=str(majority),
    )
