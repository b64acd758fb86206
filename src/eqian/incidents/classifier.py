"""Classification of a 110 call's Chinese description into a category and police / non-police.

Rules are data: ``lexicon.toml`` next to this module (or the file named by ``EQIAN_LEXICON_PATH``,
``Settings.lexicon_path``) lists per category code its Chinese label, whether it is a police matter
by default, weighted keywords, and cues that turn a matter into a police one (violence, weapons,
threats) or a civil one. A description is cut into words with ``jieba`` (every lexicon word is added
to the tokenizer's dictionary so it is kept whole), each category scores the weights of the distinct
keywords found, the best score wins, and the confidence comes from the margin over the runner-up.

Contract (used by ``incidents.service``): ``CATEGORIES``, ``Classification``, ``classify(text)``,
``lexicon_version()``, ``RuleSuggestion`` and ``suggest_rules(overrides)``.

``classify`` is thread-safe: the active ``Classifier`` is immutable once built and replaced as a
whole; the lexicon file is re-read when its modification time changes (checked at most every
``RELOAD_CHECK_SECONDS``), and a broken edit is logged and ignored while the previous rules stay.

Run ``python -m eqian.incidents.classifier check [FILE]`` to validate a lexicon,
``python -m eqian.incidents.classifier classify TEXT`` to try one description.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import threading
import time
import tomllib
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jieba

log = logging.getLogger(__name__)

CATEGORIES: dict[str, str] = {
    "labor": "劳资纠纷",
    "processing_fee": "加工费纠纷",
    "economic": "经济纠纷",
    "contract": "合同纠纷",
    "family": "家庭纠纷",
    "neighbor": "邻里纠纷",
    "traffic": "交通事故",
    "theft": "盗窃",
    "fraud": "诈骗",
    "fire": "火灾/消防",
    "help": "走失/求助",
    "public_order": "治安",
    "environment": "生态环境",
    "other": "其他",
}

FALLBACK_CATEGORY = "other"
DEFAULT_LEXICON = "lexicon.toml"
MAX_WEIGHT = 10.0
MAX_TEXT_CHARS = 2000  # a 110 description; anything longer is cut before segmentation
NEGATION_WINDOW = 2  # a cue right after a negation word (within this many words) does not count
CONFIDENCE_SCALE = 3.0  # score at which a lone winner reaches confidence 0.5
RELOAD_CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class Classification:
    category: str
    police: bool
    confidence: float
    evidence: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class RuleSuggestion:
    word: str
    category: str
    support: int  # how many corrected descriptions contain the word
    # share of the corrected descriptions containing the word that were corrected to this category
    specificity: float = 1.0


class LexiconError(ValueError):
    """The lexicon file is not valid: the message names the file and the entry at fault."""


# --- the lexicon ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryRules:
    code: str
    label: str
    police: bool
    keywords: Mapping[str, float]
    police_cues: frozenset[str] = frozenset()
    civil_cues: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Lexicon:
    version: str
    categories: Mapping[str, CategoryRules]  # in file order, which breaks ties
    police_cues: frozenset[str]
    negations: frozenset[str]
    stopwords: frozenset[str]
    source: str = "<lexicon>"

    def words(self) -> set[str]:
        """Every word the rules look for (added to the tokenizer so it is kept whole)."""
        found: set[str] = set(self.police_cues) | set(self.negations)
        for rules in self.categories.values():
            found.update(rules.keywords)
            found.update(rules.police_cues)
            found.update(rules.civil_cues)
        return found


_TOP_KEYS = {"version", "negations", "stopwords", "police", "categories"}
_CATEGORY_KEYS = {"label", "police", "keywords", "police_cues", "civil_cues"}


def _normalise(text: str) -> str:
    """NFKC (full-width letters and digits become ASCII) and lower case, as the text is."""
    return unicodedata.normalize("NFKC", text).lower()


def _word_list(source: str, name: str, raw: Any) -> frozenset[str]:
    if not isinstance(raw, list):
        raise LexiconError(f"{source}: {name} must be a list of words, got {raw!r}")
    words: set[str] = set()
    for item in raw:
        if not isinstance(item, str) or not item.strip():
            raise LexiconError(f"{source}: {name} contains {item!r}, which is not a word")
        words.add(_normalise(item.strip()))
    return frozenset(words)


def parse_lexicon(data: Mapping[str, Any], *, source: str = "<lexicon>") -> Lexicon:
    """Build and validate a ``Lexicon`` from a parsed TOML document (errors name the entry)."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise LexiconError(f"{source}: unknown key(s) {', '.join(unknown)}")
    version = data.get("version")
    if not isinstance(version, str) or not version.strip() or len(version) > 32:
        raise LexiconError(f"{source}: version must be a non-empty string of at most 32 characters")
    police = data.get("police", {})
    if not isinstance(police, dict) or set(police) - {"cues"}:
        raise LexiconError(f"{source}: [police] may only hold `cues`")
    raw_categories = data.get("categories")
    if not isinstance(raw_categories, dict) or not raw_categories:
        raise LexiconError(f"{source}: no [categories.<code>] tables")
    categories: dict[str, CategoryRules] = {}
    for code, body in raw_categories.items():
        where = f"categories.{code}"
        if code not in CATEGORIES:
            raise LexiconError(
                f"{source}: {where}: unknown category code {code!r} (known: {', '.join(CATEGORIES)})"
            )
        if not isinstance(body, dict):
            raise LexiconError(f"{source}: {where} must be a table")
        extra = sorted(set(body) - _CATEGORY_KEYS)
        if extra:
            raise LexiconError(f"{source}: {where}: unknown key(s) {', '.join(extra)}")
        label = body.get("label", CATEGORIES[code])
        if label != CATEGORIES[code]:
            raise LexiconError(
                f"{source}: {where}.label is {label!r}, the category set names it {CATEGORIES[code]!r}"
            )
        default_police = body.get("police")
        if not isinstance(default_police, bool):
            raise LexiconError(f"{source}: {where}.police must be true or false")
        raw_keywords = body.get("keywords", {})
        if not isinstance(raw_keywords, dict):
            raise LexiconError(f'{source}: {where}.keywords must be a table of "word" = weight')
        keywords: dict[str, float] = {}
        for word, weight in raw_keywords.items():
            entry = f"{where}.keywords.{word!r}"
            if not word.strip():
                raise LexiconError(f"{source}: {where}.keywords has an empty word")
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise LexiconError(f"{source}: {entry}: weight must be a number, got {weight!r}")
            if not (0 < weight <= MAX_WEIGHT) or math.isnan(weight):
                raise LexiconError(
                    f"{source}: {entry}: weight {weight!r} is out of range (0, {MAX_WEIGHT:g}]"
                )
            keywords[_normalise(word.strip())] = float(weight)
        categories[code] = CategoryRules(
            code=code,
            label=label,
            police=default_police,
            keywords=keywords,
            police_cues=_word_list(source, f"{where}.police_cues", body.get("police_cues", [])),
            civil_cues=_word_list(source, f"{where}.civil_cues", body.get("civil_cues", [])),
        )
    missing = [code for code in CATEGORIES if code not in categories]
    if missing:
        raise LexiconError(f"{source}: missing category table(s) {', '.join(missing)}")
    return Lexicon(
        version=version.strip(),
        categories=categories,
        police_cues=_word_list(source, "police.cues", police.get("cues", [])),
        negations=_word_list(source, "negations", data.get("negations", [])),
        stopwords=_word_list(source, "stopwords", data.get("stopwords", [])),
        source=source,
    )


def packaged_lexicon_text() -> str:
    return resources.files("eqian.incidents").joinpath(DEFAULT_LEXICON).read_text(encoding="utf-8")


def load_lexicon(path: str | Path | None = None) -> Lexicon:
    """The packaged lexicon, or the TOML file at ``path`` (``LexiconError`` when it is not valid)."""
    if path is None:
        text, source = packaged_lexicon_text(), f"eqian/incidents/{DEFAULT_LEXICON}"
    else:
        file = Path(path)
        source = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise LexiconError(f"{source}: cannot read the lexicon: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise LexiconError(f"{source}: not UTF-8 text: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LexiconError(f"{source}: not valid TOML: {exc}") from exc
    return parse_lexicon(data, source=source)


# --- segmentation --------------------------------------------------------------------------------

_base_lock = threading.Lock()
_base_tokenizer: jieba.Tokenizer | None = None


def _base() -> jieba.Tokenizer:
    """jieba's default dictionary, loaded once per process (about a second, from jieba's cache)."""
    global _base_tokenizer
    with _base_lock:
        if _base_tokenizer is None:
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            _base_tokenizer = tokenizer
        return _base_tokenizer


def _tokenizer_for(words: Iterable[str]) -> jieba.Tokenizer:
    """A private tokenizer: a copy of the default dictionary plus the lexicon's words (a copy, so
    that a reloaded lexicon starts clean and jieba's global tokenizer is left alone)."""
    base = _base()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ = dict(base.FREQ)  # the base is never modified after loading
    tokenizer.total = base.total
    tokenizer.initialized = True
    for word in sorted(words, key=len):
        if len(word) > 1:
            # the frequency that just lets the word win over its parts, raised a little
            tokenizer.add_word(word, freq=tokenizer.suggest_freq(word, tune=False) + 1)
    return tokenizer


# --- the classifier ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Index:
    keyword_hits: Mapping[str, tuple[tuple[str, float], ...]]  # word → ((category, weight), …)
    order: Mapping[str, int]  # category → position in the file (ties)
    words: frozenset[str]  # every lexicon word of two characters or more
    longest: int


@dataclass
class Classifier:
    """Classify with one lexicon. Immutable after construction, so safe to share between threads."""

    lexicon: Lexicon
    _tokenizer: jieba.Tokenizer = field(init=False, repr=False)
    _index: _Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        hits: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for code, rules in self.lexicon.categories.items():
            for word, weight in rules.keywords.items():
                hits[word].append((code, weight))
        # words looked for inside compounds; not negations (是不是 is no 不是)
        words = frozenset(w for w in self.lexicon.words() - self.lexicon.negations if len(w) > 1)
        self._index = _Index(
            keyword_hits={w: tuple(v) for w, v in hits.items()},
            order={code: i for i, code in enumerate(self.lexicon.categories)},
            words=words,
            longest=max((len(w) for w in words), default=0),
        )
        self._tokenizer = _tokenizer_for(self.lexicon.words())

    @property
    def version(self) -> str:
        return self.lexicon.version

    def tokens(self, text: str, *, hmm: bool = False) -> list[str]:
        cleaned = _normalise(text[:MAX_TEXT_CHARS])
        return [t for t in self._tokenizer.lcut(cleaned, HMM=hmm) if t.strip()]

    def words(self, text: str) -> list[str]:
        """The tokens, with a compound token that is not a lexicon word replaced by the lexicon
        words inside it, if any (jieba keeps dictionary compounds whole: 邻居家 → 邻居, 发工资 → 工资)."""
        index = self._index
        found: list[str] = []
        for token in self.tokens(text):
            if len(token) < 3 or token in index.words or token in index.keyword_hits:
                found.append(token)
                continue
            inside = _longest_matches(token, index.words, index.longest)
            found.extend(inside or (token,))
        return found

    def classify(self, text: str) -> Classification:
        tokens = self.words(text)
        scores: dict[str, float] = defaultdict(float)
        best_weight: dict[str, float] = defaultdict(float)
        contributed: dict[str, list[tuple[float, str]]] = defaultdict(list)
        seen: set[str] = set()
        for token in tokens:
            if token in seen:
                continue
            seen.add(token)
            for code, weight in self._index.keyword_hits.get(token, ()):
                scores[code] += weight
                best_weight[code] = max(best_weight[code], weight)
                contributed[code].append((weight, token))
        lex = self.lexicon
        if not scores:
            rules = lex.categories[FALLBACK_CATEGORY]
            category, confidence, evidence = FALLBACK_CATEGORY, 0.0, []
        else:
            ranked = sorted(scores, key=lambda c: (-scores[c], -best_weight[c], self._index.order[c]))
            category = ranked[0]
            top = scores[category]
            runner_up = scores[ranked[1]] if len(ranked) > 1 else 0.0
            confidence = (top - runner_up) / top * top / (top + CONFIDENCE_SCALE)
            rules = lex.categories[category]
            evidence = [w for _, w in sorted(contributed[category], key=lambda p: -p[0])]
        police = rules.police
        cues = _cues_in(tokens, lex.negations)
        civil = sorted(cues & rules.civil_cues)
        police_specific = sorted(cues & rules.police_cues)
        violence = sorted(cues & lex.police_cues)
        if civil:
            police = False
        if police_specific:
            police = True
        if violence:
            police = True
        for cue in (*civil, *police_specific, *violence):
            if cue not in evidence:
                evidence.append(cue)
        return Classification(
            category=category,
            police=police,
            confidence=round(max(0.0, min(1.0, confidence)), 3),
            evidence=tuple(evidence),
            version=lex.version,
        )

    def suggest_rules(
        self, overrides: Iterable[tuple[str, str]], *, min_support: int = 2, limit: int = 50
    ) -> list[RuleSuggestion]:
        docs_with: Counter[str] = Counter()
        support: dict[str, Counter[str]] = defaultdict(Counter)
        for text, category in overrides:
            if category not in CATEGORIES or not text:
                continue
            words = {t for t in self.tokens(text, hmm=True) if self._worth_suggesting(t)}
            docs_with.update(words)
            support[category].update(words)
        suggestions: list[RuleSuggestion] = []
        for category, counter in support.items():
            known = self.lexicon.categories[category].keywords
            for word, count in counter.items():
                if count < min_support or word in known:
                    continue
                suggestions.append(RuleSuggestion(word, category, count, round(count / docs_with[word], 3)))
        suggestions.sort(key=lambda s: (-s.support * s.specificity, -s.support, -len(s.word), s.word))
        return suggestions[:limit]

    def _worth_suggesting(self, token: str) -> bool:
        return (
            len(token) >= 2
            and token not in self.lexicon.stopwords
            and token not in self.lexicon.negations
            and not _NOT_A_WORD.fullmatch(token)
        )


# numbers, amounts and counters (三千多, 两个, 10点) are never worth a rule
_NOT_A_WORD = re.compile(r"[\W\d_零〇一二三四五六七八九十百千万亿两几多余半第个元块岁点号时分]+")


def _longest_matches(token: str, words: frozenset[str], longest: int) -> list[str]:
    """Greedy left-to-right longest lexicon words inside ``token`` (none: empty list)."""
    found: list[str] = []
    i, n = 0, len(token)
    while i < n - 1:
        for j in range(min(n, i + longest), i + 1, -1):
            if token[i:j] in words:
                found.append(token[i:j])
                i = j
                break
        else:
            i += 1
    return found


def _cues_in(tokens: list[str], negations: frozenset[str]) -> set[str]:
    """The tokens that are not right after a negation word (cue candidates)."""
    found: set[str] = set()
    negated_until = -1
    for i, token in enumerate(tokens):
        if i > negated_until:
            found.add(token)
        if token in negations:
            negated_until = i + NEGATION_WINDOW
    return found


# --- the process-wide classifier -----------------------------------------------------------------


class _Active:
    """The classifier of the configured lexicon, rebuilt when the file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._classifier: Classifier | None = None
        self._path: Path | None = None
        self._mtime: float | None = None
        self._checked = 0.0

    def get(self) -> Classifier:
        current = self._classifier
        if current is not None and time.monotonic() - self._checked < RELOAD_CHECK_SECONDS:
            return current
        with self._lock:
            now = time.monotonic()
            if self._classifier is not None and now - self._checked < RELOAD_CHECK_SECONDS:
                return self._classifier
            self._checked = now
            path = _configured_path()
            mtime = _mtime(path)
            if self._classifier is None or path != self._path or mtime != self._mtime:
                try:
                    self._classifier = Classifier(load_lexicon(path))
                except LexiconError:
                    if self._classifier is None:
                        raise
                    log.exception("lexicon not reloaded, keeping version %s", self._classifier.version)
                self._path, self._mtime = path, mtime
            return self._classifier

    def reset(self) -> None:
        with self._lock:
            self._classifier, self._path, self._mtime, self._checked = None, None, None, 0.0


def _configured_path() -> Path | None:
    from eqian.core.config import get_settings

    return get_settings().lexicon_path


def _mtime(path: Path | None) -> float | None:
    if path is None:
        return None
    try:
        return path.stat().st_mtime
    except OSError:
        return None


_active = _Active()


def active_classifier() -> Classifier:
    """The classifier of the configured lexicon (``Settings.lexicon_path`` or the packaged one)."""
    return _active.get()


def reload_lexicon() -> None:
    """Forget the active classifier: the next call reads the lexicon again (e.g. after a settings change)."""
    _active.reset()


def lexicon_version() -> str:
    return active_classifier().version


def classify(text: str) -> Classification:
    return active_classifier().classify(text)


def suggest_rules(
    overrides: Iterable[tuple[str, str]], *, min_support: int = 2, limit: int = 50
) -> list[RuleSuggestion]:
    """Words worth adding to the lexicon, from (description, corrected category) pairs.

    A word is a jieba token of at least two characters, not a stopword or a number, and not yet a
    keyword of the category it was corrected to. Ranked by support (descriptions containing it)
    times specificity (the share of those descriptions corrected to this category).
    """
    return active_classifier().suggest_rules(overrides, min_support=min_support, limit=limit)


# --- evaluation against the labelled sample ------------------------------------------------------

SAMPLES = "samples/labelled.csv"
SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class Sample:
    id: int
    text: str
    category: str
    police: bool
    split: str


def read_samples(path: str | Path | None = None) -> list[Sample]:
    """The labelled 110 descriptions (``id,text,category,police,split``); errors name the row."""
    import csv

    file = Path(path) if path is not None else Path(__file__).with_name("samples") / "labelled.csv"
    samples: list[Sample] = []
    with file.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != ["id", "text", "category", "police", "split"]:
            raise ValueError(f"{file}: header must be id,text,category,police,split")
        for row in reader:
            where = f"{file}: row id {row['id']!r}"
            if row["category"] not in CATEGORIES:
                raise ValueError(f"{where}: unknown category {row['category']!r}")
            if row["police"] not in ("true", "false"):
                raise ValueError(f"{where}: police must be true or false")
            if row["split"] not in SPLITS:
                raise ValueError(f"{where}: split must be one of {', '.join(SPLITS)}")
            samples.append(
                Sample(int(row["id"]), row["text"], row["category"], row["police"] == "true", row["split"])
            )
    return samples


@dataclass(frozen=True)
class CategoryScore:
    code: str
    support: int  # samples labelled with the category
    predicted: int  # samples the classifier put into it
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.support if self.support else 0.0


@dataclass(frozen=True)
class Evaluation:
    version: str
    total: int
    correct: int
    police_correct: int
    per_category: Mapping[str, CategoryScore]
    mistakes: tuple[tuple[Sample, Classification], ...]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def police_accuracy(self) -> float:
        return self.police_correct / self.total if self.total else 0.0

    def table(self) -> str:
        """A Markdown table: per category support, precision, recall, then the totals."""
        lines = [
            "| category | 类别 | n | precision | recall |",
            "|---|---|---:|---:|---:|",
        ]
        for code, score in self.per_category.items():
            lines.append(
                f"| {code} | {CATEGORIES[code]} | {score.support} "
                f"| {score.precision:.2f} | {score.recall:.2f} |"
            )
        lines.append(
            f"| **category accuracy** | | {self.total} | | **{self.accuracy:.3f}** ({self.correct}) |"
        )
        lines.append(
            f"| **police / non-police accuracy** | | {self.total} | | "
            f"**{self.police_accuracy:.3f}** ({self.police_correct}) |"
        )
        return "\n".join(lines)


def evaluate(samples: Iterable[Sample], classifier: Classifier | None = None) -> Evaluation:
    """Classify every sample and count what came out right, per category and overall."""
    engine = classifier or active_classifier()
    support: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    police_correct = 0
    mistakes: list[tuple[Sample, Classification]] = []
    for sample in samples:
        result = engine.classify(sample.text)
        support[sample.category] += 1
        predicted[result.category] += 1
        if result.category == sample.category:
            correct[sample.category] += 1
        police_correct += result.police == sample.police
        if result.category != sample.category or result.police != sample.police:
            mistakes.append((sample, result))
    per_category = {
        code: CategoryScore(code, support[code], predicted[code], correct[code]) for code in CATEGORIES
    }
    return Evaluation(
        version=engine.version,
        total=sum(support.values()),
        correct=sum(correct.values()),
        police_correct=police_correct,
        per_category=per_category,
        mistakes=tuple(mistakes),
    )


def _main(argv: list[str]) -> int:
    usage = (
        "usage: python -m eqian.incidents.classifier check [LEXICON] | classify TEXT… | "
        "evaluate [train|heldout|all] [SAMPLES.csv]"
    )
    if not argv or argv[0] not in ("check", "classify", "evaluate"):
        print(usage, file=sys.stderr)
        return 2
    if argv[0] == "evaluate":
        split = argv[1] if len(argv) > 1 else "heldout"
        samples = read_samples(argv[2] if len(argv) > 2 else None)
        chosen = [s for s in samples if split == "all" or s.split == split]
        report = evaluate(chosen)
        print(f"lexicon {report.version}, {split}: {report.total} samples\n")
        print(report.table())
        for sample, result in report.mistakes:
            expected = f"{sample.category}/{'police' if sample.police else 'civil'}"
            got = f"{result.category}/{'police' if result.police else 'civil'}"
            print(f"  #{sample.id} {expected} → {got} [{','.join(result.evidence)}] {sample.text}")
        return 0
    if argv[0] == "check":
        try:
            lexicon = load_lexicon(argv[1] if len(argv) > 1 else None)
        except LexiconError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        words = sum(len(r.keywords) for r in lexicon.categories.values())
        print(
            f"{lexicon.source}: version {lexicon.version}, "
            f"{len(lexicon.categories)} categories, {words} keywords"
        )
        return 0
    for text in argv[1:]:
        result = classify(text)
        print(
            f"{result.category} ({CATEGORIES[result.category]}) police={result.police} "
            f"confidence={result.confidence} evidence={','.join(result.evidence)} v{result.version}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
