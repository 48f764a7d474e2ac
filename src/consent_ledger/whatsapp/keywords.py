"""Keywords in inbound messages: opt-out (STOP), opt-in (START), help (HELP), as data.

A message is a keyword only when the **whole message**, normalised, is one of the words:
``"STOP"``, ``" stop "``, ``"Stop!"`` and a full-width ``STOP`` are; ``"stop sending me offers
please"`` is not. That is the carriers' practice (CTIA's Messaging Principles and Best
Practices; Twilio, AWS and the other aggregators match the whole message), and it is what
makes automatic handling safe: a message that merely *mentions* a keyword ("I can't stop
laughing", "please don't cancel my order") must not withdraw anything by itself.

The FCC's revocation rule (FCC 24-18, 47 CFR § 64.1200(a)(10), in force since 11 April 2025)
goes further: a consumer may revoke consent by *any reasonable means*, and "stop, quit, end,
revoke, opt out, cancel, unsubscribe" in a reply are per se reasonable, even inside a longer
message. Judging a free-text message is not something to automate, so a longer message that
holds an opt-out word as a word of its own is classified :attr:`KeywordKind.POSSIBLE_OPT_OUT`:
a flag for a person to review (within the FCC's 10 business days), **never acted on
automatically**.

Normalisation, in order (:func:`normalise`):

1. Unicode NFKC, case folding, NFKC again (full-width letters and ``stop`` are one word;
   German ``ß`` folds to ``ss``);
2. strip surrounding whitespace, punctuation, symbols (emoji included) and invisible format
   characters (``"¡Basta!"``, ``"STOP."``, ``"stop 🛑"``);
3. collapse inner runs of whitespace into one space (``"STOP   ALL"`` is ``"stop all"``).

Accents are kept: ``KÜNDIGEN`` and ``KUNDIGEN`` are different words, so the shipped sets list
the spellings people type without them (``KUENDIGEN``, ``NO MAS``). Inner punctuation is kept
too: ``OPT-OUT`` and ``OPT OUT`` are listed separately.

Button replies (a template's quick-reply button, an interactive reply button or list row) are
classified by their **payload or id** first, against the rules configured with
``match="button"`` (the ids are the business's own, compared exactly), then by their visible
title, like a typed message. Meta's marketing opt-out button reads "Stop promotions" by
default, so ``STOP PROMOTIONS`` ships as an opt-out of the marketing categories only.

The sets below are a **shipped default**, not a legal list: the operator extends them
(:meth:`Keywords.extended`, :meth:`Keywords.with_words`, :meth:`Keywords.from_config`) with
words of their own, in any language. Every set of rules has a :attr:`Keywords.version` (a
hash of the rules), recorded on every classification, so an auditor can tell which list
classified a message (reference/domain.md §2.2: "version the keyword list").
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

import orjson
from pydantic import Field, model_validator

from consent_ledger.exceptions import InvalidInputError
from consent_ledger.model.taxonomy import CATEGORIES, TemplateCategory
from consent_ledger.model.values import Categories, Immutable, Language

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from consent_ledger.model.taxonomy import Category


class KeywordConfigError(InvalidInputError):
    """A keyword rule is malformed, or two rules give one word different meanings."""


class KeywordKind(StrEnum):
    """What a keyword asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    POSSIBLE_OPT_OUT = "possible_opt_out"
    """An opt-out word inside a longer message: for review, never acted on by itself."""


class Scope(StrEnum):
    """How far a keyword reaches: which senders and channels it withdraws (or grants) for."""

    SENDER = "sender"
    """Only the business phone number the message was sent to."""
    CHANNEL = "channel"
    """Every sender of the business on the channel the message came in on (the default)."""
    ALL_CHANNELS = "all-channels"
    """Every channel of the business (the FCC's delayed "revoke-all" reading)."""


class Match(StrEnum):
    """What part of an inbound message a rule is compared with."""

    TEXT = "text"
    """The whole text (or a button's title), normalised."""
    BUTTON = "button"
    """A button's payload or id, exactly as the business defined it."""


def marketing_categories(categories: Iterable[Category]) -> tuple[str, ...]:
    """The names of the MARKETING ones among ``categories``, sorted."""
    return tuple(
        sorted(c.name for c in categories if c.template_category is TemplateCategory.MARKETING)
    )


MARKETING_CATEGORIES = marketing_categories(CATEGORIES.values())
"""The built-in marketing categories: what Meta's "Stop promotions" button withdraws.

A rule that names exactly these withdraws every MARKETING category of the business the
message was sent to, its own included: ingestion resolves them per business.
"""

_OPT_OUT, _OPT_IN, _HELP = KeywordKind.OPT_OUT, KeywordKind.OPT_IN, KeywordKind.HELP

DEFAULT_WORDS: Mapping[str, Mapping[KeywordKind, tuple[str, ...]]] = {
    # CTIA (STOP, END, CANCEL, UNSUBSCRIBE, QUIT, STOPALL), the FCC's per se reasonable
    # replies (stop, quit, end, revoke, opt out, cancel, unsubscribe), Twilio's defaults
    # (+ OPTOUT, REVOKE). YES is deliberately not an opt-in here, unlike on SMS: on WhatsApp
    # "yes" answers every other question a business asks.
    "en": {
        _OPT_OUT: (
            "STOP",
            "STOPALL",
            "STOP ALL",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "REVOKE",
            "OPTOUT",
            "OPT OUT",
            "OPT-OUT",
        ),
        _OPT_IN: ("START", "UNSTOP"),
        _HELP: ("HELP", "INFO"),
    },
    # FINE ("end") is left out: it is also English for "all right".
    "it": {
        _OPT_OUT: (
            "STOP",
            "BASTA",
            "ANNULLA",
            "CANCELLA",
            "CANCELLAMI",
            "DISISCRIVI",
            "DISISCRIVIMI",
        ),
        _OPT_IN: ("ISCRIVIMI",),
        _HELP: ("AIUTO", "INFO"),
    },
    # BAJA / ALTA are the Spanish SMS conventions ("dar de baja", "dar de alta");
    # "No más" is the FCC's own example of other clear wording.
    "es": {
        _OPT_OUT: ("BAJA", "PARAR", "CANCELAR", "ALTO", "DETENER", "NO MÁS", "NO MAS"),
        _OPT_IN: ("ALTA",),
        _HELP: ("AYUDA", "INFO"),
    },
    # ANMELDEN is not an opt-in: alone, it as often means "log in".
    "de": {
        _OPT_OUT: ("STOPP", "ABMELDEN", "ABBESTELLEN", "ENDE", "KÜNDIGEN", "KUENDIGEN"),
        _OPT_IN: (),
        _HELP: ("HILFE", "INFO"),
    },
    # SAIR is the Brazilian SMS convention; no Portuguese word is a safe opt-in alone.
    "pt": {
        _OPT_OUT: ("PARAR", "PARE", "SAIR", "CANCELAR", "DESCADASTRAR"),
        _OPT_IN: (),
        _HELP: ("AJUDA", "INFO"),
    },
}
"""The shipped keyword sets, by language and kind: every category, every sender of the channel."""

SPOKEN_IN: dict[str, frozenset[str]] = {
    language: frozenset(countries.split())
    for language, countries in {
        "en": "GB US CA IE AU NZ ZA NG KE GH IN SG JM",
        "it": "IT SM VA CH",
        "es": "ES MX AR CO CL PE VE EC GT CU BO DO HN PY SV NI CR PA UY PR GQ",
        "de": "DE AT CH LI LU BE",
        "pt": "PT BR AO MZ CV GW ST TL",
        "fr": "FR BE CH LU MC CA SN CI CM",
        "nl": "NL BE SR",
    }.items()
}
"""Where languages are spoken (ISO 3166): a word several languages share (PARAR: Spanish and
Portuguese; STOP: English and Italian) is recorded under the one spoken in the sender's
country, else under all of them."""


class KeywordRule(Immutable):
    """One word (or button id) and what it means.

    Args:
        word: The keyword as written (normalised before matching), or a button's payload.
        kind: Opt-out, opt-in or help.
        language: The language the word belongs to (None for a button payload).
        scope: Which senders and channels it reaches.
        categories: The categories it withdraws or grants; None for every category. Which
            categories exist depends on the business: ingestion checks them against it.
        match: Compared with the whole text (``text``) or a button's payload (``button``).
    """

    word: str = Field(min_length=1, max_length=200)
    kind: KeywordKind
    language: Language | None = None
    scope: Scope = Scope.CHANNEL
    categories: Categories | None = None
    match: Match = Match.TEXT

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.kind is KeywordKind.POSSIBLE_OPT_OUT:
            msg = f"{self.word!r}: possible_opt_out is a classification, not a rule's kind"
            raise KeywordConfigError(msg)
        if self.match is Match.TEXT and not normalise(self.word):
            msg = f"{self.word!r} is no keyword: nothing is left of it once normalised"
            raise KeywordConfigError(msg)
        return self

    @property
    def key(self) -> str:
        """What a message is compared with: the normalised word, or the payload as is."""
        return normalise(self.word) if self.match is Match.TEXT else self.word


class Keyword(Immutable):
    """How a message was classified: the kind, the keyword it matched, and its reach."""

    kind: KeywordKind
    word: str = Field(description="the keyword matched, normalised (or the button payload)")
    language: str | None = Field(
        description="the word's language: where several share it, the one spoken in the "
        "sender's country; None if that cannot be told (see languages)"
    )
    languages: tuple[str, ...] = Field(default=(), description="every language with this word")
    scope: Scope
    categories: tuple[str, ...] | None = Field(description="None: every category")
    matched_on: Match
    version: str = Field(description="Keywords.version of the rules that classified it")

    @property
    def automatic(self) -> bool:
        """Whether the ledger may act on it without review (everything but a possible opt-out)."""
        return self.kind is not KeywordKind.POSSIBLE_OPT_OUT


_FOLD_ROUNDS = 4
_WORD = re.compile(r"\w+")
_VARIATION_SELECTORS = range(0xFE00, 0xFE10)


def _is_edge_noise(char: str) -> bool:
    category = unicodedata.category(char)
    return (
        category[0] in "PSZ"
        or category in {"Cc", "Cf"}
        or char.isspace()
        or ord(char) in _VARIATION_SELECTORS
    )


def _fold_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    start, end = 0, len(text)
    while start < end and _is_edge_noise(text[start]):
        start += 1
    while end > start and _is_edge_noise(text[end - 1]):
        end -= 1
    return " ".join(text[start:end].split())


def normalise(text: str) -> str:
    """The form messages and keywords are compared in.

    NFKC, case folding, surrounding whitespace, punctuation and symbols stripped, inner
    whitespace collapsed to one space. Idempotent: ``normalise(normalise(t)) == normalise(t)``.
    """
    # One pass is almost always a fixed point; a few exotic characters need a second one.
    for _ in range(_FOLD_ROUNDS):
        folded = _fold_once(text)
        if folded == text:
            break
        text = folded
    return text


class Keywords:
    """A set of keyword rules, and the classifier over them.

    Build the shipped defaults with :meth:`default`, extend them with :meth:`with_words`,
    :meth:`extended` or :meth:`from_config`. Instances are immutable: extending returns a
    new set.

    Raises:
        KeywordConfigError: two rules give one word (or one button payload) different
            meanings.
    """

    def __init__(self, rules: Iterable[KeywordRule]) -> None:
        """Index the rules; the first rule for a word wins among rules that agree."""
        self._rules = tuple(rules)
        self._text: dict[str, KeywordRule] = {}
        self._buttons: dict[str, KeywordRule] = {}
        self._languages: dict[str, tuple[str, ...]] = {}  # a word's key -> its languages
        for rule in self._rules:
            index = self._text if rule.match is Match.TEXT else self._buttons
            _add(index, rule)
            known = self._languages.get(rule.key, ())
            if rule.match is Match.TEXT and rule.language and rule.language not in known:
                self._languages[rule.key] = (*known, rule.language)
        # Multi-word opt-outs ("opt out", "stop all") as token runs, longest first.
        runs = [
            (tuple(_WORD.findall(key)), rule)
            for key, rule in self._text.items()
            if rule.kind is KeywordKind.OPT_OUT
        ]
        self._opt_out_runs = sorted(
            ((tokens, rule) for tokens, rule in runs if tokens), key=lambda r: -len(r[0])
        )
        canonical = [rule.model_dump(mode="json") for rule in self._rules]
        digest = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS))
        self._version = "sha256:" + digest.hexdigest()

    @classmethod
    def default(cls) -> Keywords:
        """The shipped sets (:data:`DEFAULT_WORDS`) and Meta's "Stop promotions" button."""
        return _default()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Keywords:
        """Keywords from an operator's configuration (a JSON object).

        ``{"defaults": true, "rules": [{"word": "NON SCRIVERMI", "kind": "opt_out",
        "language": "it"}, {"word": "STOP_PROMOS", "kind": "opt_out", "match": "button",
        "categories": ["offers"]}]}``: ``defaults`` (true unless false) starts from the
        shipped sets; each rule has the fields of :class:`KeywordRule`.

        Raises:
            KeywordConfigError: the configuration is not of that shape, or rules conflict.
        """
        unknown = set(config) - {"defaults", "rules"}
        rules = config.get("rules", [])
        defaults = config.get("defaults", True)
        if unknown or not isinstance(rules, list) or not isinstance(defaults, bool):
            msg = (
                "a keyword configuration is an object with 'defaults' (true or false) and "
                "'rules' (a list of rules)"
            )
            raise KeywordConfigError(msg)
        try:
            parsed = [KeywordRule.model_validate(rule) for rule in rules]
        except ValueError as e:  # pydantic's ValidationError is a ValueError
            msg = f"a keyword rule is malformed: {e}"
            raise KeywordConfigError(msg) from None
        base = cls.default().rules if defaults else ()
        return cls((*base, *parsed))

    @property
    def rules(self) -> tuple[KeywordRule, ...]:
        """Every rule, in the order given."""
        return self._rules

    @property
    def version(self) -> str:
        """``sha256:<hex>`` of the rules: changes whenever a rule is added or changed."""
        return self._version

    def extended(self, rules: Iterable[KeywordRule]) -> Keywords:
        """These rules and more.

        Raises:
            KeywordConfigError: a new rule gives a known word another meaning.
        """
        return Keywords((*self._rules, *rules))

    def with_words(  # noqa: PLR0913 (a word list has this many facts)
        self,
        language: str,
        *,
        opt_out: Iterable[str] = (),
        opt_in: Iterable[str] = (),
        help_: Iterable[str] = (),
        scope: Scope = Scope.CHANNEL,
        categories: tuple[str, ...] | None = None,
    ) -> Keywords:
        """These rules and more words in one language (localised keywords).

        Raises:
            KeywordConfigError: a word already means something else.
            InvalidInputError: the language tag or a category is unknown.
        """
        words = ((opt_out, _OPT_OUT), (opt_in, _OPT_IN), (help_, _HELP))
        return self.extended(
            KeywordRule(word=word, kind=kind, language=language, scope=scope, categories=categories)
            for group, kind in words
            for word in group
        )

    def words(self, kind: KeywordKind, language: str | None = None) -> tuple[str, ...]:
        """The words of one kind (in one language), as written in the rules."""
        return tuple(
            rule.word
            for rule in self._rules
            if rule.match is Match.TEXT
            and rule.kind is kind
            and (language is None or rule.language == language)
        )

    def classify(self, text: str, *, region: str | None = None) -> Keyword | None:
        """What a whole inbound text asks for, or None if it is no keyword.

        An exact match (after :func:`normalise`) of the whole text is an opt-out, opt-in or
        help keyword. Otherwise, an opt-out word standing as a word of its own inside the
        text is a possible opt-out (for review only). Anything else is None. ``region``:
        the sender's country, which tells the language of a word several languages share.
        """
        key = normalise(text)
        if not key:
            return None
        rule = self._text.get(key)
        if rule is not None:
            return self._keyword(rule, rule.kind, Match.TEXT, region)
        tokens = _WORD.findall(key)
        for start in range(len(tokens)):
            for run, rule in self._opt_out_runs:
                if tuple(tokens[start : start + len(run)]) == run:
                    return self._keyword(rule, KeywordKind.POSSIBLE_OPT_OUT, Match.TEXT, region)
        return None

    def classify_button(
        self, payload: str | None, title: str | None, *, region: str | None = None
    ) -> Keyword | None:
        """What a button reply asks for: by its payload (exactly), else by its title as text."""
        if payload is not None:
            rule = self._buttons.get(payload)
            if rule is not None:
                return self._keyword(rule, rule.kind, Match.BUTTON, region)
        return self.classify(title, region=region) if title is not None else None

    def _keyword(
        self, rule: KeywordRule, kind: KeywordKind, matched_on: Match, region: str | None
    ) -> Keyword:
        languages = self._languages.get(rule.key, ()) if matched_on is Match.TEXT else ()
        return Keyword(
            kind=kind,
            word=rule.key,
            language=_language_of(languages, region) if languages else rule.language,
            languages=languages or ((rule.language,) if rule.language else ()),
            scope=rule.scope,
            categories=rule.categories,
            matched_on=matched_on,
            version=self._version,
        )

    def __repr__(self) -> str:
        """The number of rules and the version."""
        return f"Keywords({len(self._rules)} rules, {self._version[:19]}...)"


def _language_of(languages: tuple[str, ...], region: str | None) -> str | None:
    """The one of a word's languages spoken in ``region``; None if that cannot be told."""
    if len(languages) == 1:
        return languages[0]
    spoken = [language for language in languages if region in SPOKEN_IN.get(language, ())]
    return spoken[0] if len(spoken) == 1 else None


def _add(index: dict[str, KeywordRule], rule: KeywordRule) -> None:
    known = index.get(rule.key)
    if known is None:
        index[rule.key] = rule
        return
    meaning = ("kind", "scope", "categories")
    if any(getattr(known, f) != getattr(rule, f) for f in meaning):
        msg = (
            f"{rule.word!r} would mean {rule.kind} ({rule.scope}, categories "
            f"{rule.categories or 'all'}) but already means {known.kind} ({known.scope}, "
            f"categories {known.categories or 'all'}) from {known.word!r}"
        )
        raise KeywordConfigError(msg)


@functools.cache
def _default() -> Keywords:
    rules = [
        KeywordRule(word=word, kind=kind, language=language)
        for language, kinds in DEFAULT_WORDS.items()
        for kind, words in kinds.items()
        for word in words
    ]
    # Meta's marketing opt-out button (its default label); it withdraws marketing only.
    rules.append(
        KeywordRule(
            word="STOP PROMOTIONS",
            kind=KeywordKind.OPT_OUT,
            language="en",
            categories=MARKETING_CATEGORIES,
        )
    )
    return Keywords(rules)
