"""Inbound keywords: whole-message matching after normalisation, localised sets, configuration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent_ledger import InvalidInputError
from consent_ledger.whatsapp.keywords import (
    DEFAULT_WORDS,
    MARKETING_CATEGORIES,
    Keyword,
    KeywordConfigError,
    KeywordKind,
    KeywordRule,
    Keywords,
    Match,
    Scope,
    normalise,
)

OPT_OUT, OPT_IN, HELP = KeywordKind.OPT_OUT, KeywordKind.OPT_IN, KeywordKind.HELP
POSSIBLE = KeywordKind.POSSIBLE_OPT_OUT


def classify(text: str) -> Keyword | None:
    return Keywords.default().classify(text)


def kind_of(text: str) -> KeywordKind | None:
    keyword = classify(text)
    return keyword.kind if keyword else None


class TestNormalise:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("STOP", "stop"),
            ("  Stop \n", "stop"),
            ("stop!", "stop"),
            ("STOP.", "stop"),
            ("¡Basta!", "basta"),
            ("STOP   ALL", "stop all"),
            ("stop\u00a0all", "stop all"),
            ("\uff33\uff34\uff2f\uff30", "stop"),  # full-width STOP
            ("stop 🛑", "stop"),
            ("\u200bstop\u200b", "stop"),  # zero-width spaces around
            ("KÜNDIGEN", "kündigen"),
            ("Straße", "strasse"),
            ("opt-out", "opt-out"),
            ("...", ""),
            ("", ""),
        ],
    )
    def test_examples(self, text: str, expected: str) -> None:
        assert normalise(text) == expected

    @given(st.text())
    def test_is_idempotent(self, text: str) -> None:
        once = normalise(text)

        assert normalise(once) == once


class TestExactMatch:
    @pytest.mark.parametrize(
        "word", ["stop", "quit", "end", "revoke", "opt out", "cancel", "unsubscribe"]
    )
    def test_every_fcc_revocation_word_opts_out(self, word: str) -> None:
        assert kind_of(word) is OPT_OUT
        assert kind_of(word.upper()) is OPT_OUT

    @pytest.mark.parametrize(
        "word", ["STOP", "END", "CANCEL", "UNSUBSCRIBE", "QUIT", "STOPALL", "OPTOUT", "REVOKE"]
    )
    def test_every_ctia_and_twilio_opt_out_word_opts_out(self, word: str) -> None:
        assert kind_of(word) is OPT_OUT

    @pytest.mark.parametrize(
        ("text", "word", "language"),
        [
            ("STOP", "stop", "en"),
            (" Stop ", "stop", "en"),
            ("stop all", "stop all", "en"),
            ("Opt-Out!", "opt-out", "en"),
            ("BASTA", "basta", "it"),
            ("Disiscrivimi", "disiscrivimi", "it"),
            ("Baja", "baja", "es"),
            ("¡No más!", "no más", "es"),
            ("no mas", "no mas", "es"),
            ("STOPP", "stopp", "de"),
            ("Abbestellen", "abbestellen", "de"),
            ("KÜNDIGEN", "kündigen", "de"),
            ("sair", "sair", "pt"),
            ("Descadastrar", "descadastrar", "pt"),
        ],
    )
    def test_opt_out_words_name_the_word_and_language(
        self, text: str, word: str, language: str
    ) -> None:
        """The language of a sender from a country where it is spoken (STOP: en and it)."""
        region = {"en": "GB", "it": "IT", "es": "ES", "de": "DE", "pt": "BR"}[language]
        keyword = Keywords.default().classify(text, region=region)

        assert keyword is not None
        assert (keyword.kind, keyword.word, keyword.language) == (OPT_OUT, word, language)
        assert keyword.scope is Scope.CHANNEL
        assert keyword.categories is None
        assert keyword.matched_on is Match.TEXT
        assert keyword.automatic
        assert keyword.version == Keywords.default().version

    @pytest.mark.parametrize(
        ("region", "language"),
        [("BR", "pt"), ("MX", "es"), ("ES", "es"), ("JP", None), (None, None)],
    )
    def test_a_word_in_two_languages_is_the_one_spoken_where_the_sender_is(
        self, region: str | None, language: str | None
    ) -> None:
        keyword = Keywords.default().classify("cancelar", region=region)

        assert keyword is not None
        assert (keyword.language, keyword.languages) == (language, ("es", "pt"))
        assert kind_of("PARAR") is OPT_OUT

    @pytest.mark.parametrize("text", ["START", "start", "Unstop", "Alta", "iscrivimi"])
    def test_opt_in_words(self, text: str) -> None:
        assert kind_of(text) is OPT_IN

    @pytest.mark.parametrize("text", ["YES", "yes", "Sí", "ok", "ANMELDEN", "fine"])
    def test_words_that_answer_other_questions_are_no_keyword(self, text: str) -> None:
        assert classify(text) is None

    @pytest.mark.parametrize("text", ["HELP", "help?", "Info", "AIUTO", "Ayuda", "HILFE", "ajuda"])
    def test_help_words(self, text: str) -> None:
        assert kind_of(text) is HELP

    def test_stop_promotions_withdraws_marketing_only(self) -> None:
        keyword = classify("Stop promotions")

        assert keyword is not None
        assert keyword.kind is OPT_OUT
        assert keyword.categories == MARKETING_CATEGORIES
        assert "offers" in MARKETING_CATEGORIES
        assert "order-updates" not in MARKETING_CATEGORIES

    def test_every_shipped_word_classifies_as_its_kind(self) -> None:
        for kinds in DEFAULT_WORDS.values():
            for kind, words in kinds.items():
                for word in words:
                    assert kind_of(word) is kind, word


class TestLongerMessages:
    @pytest.mark.parametrize(
        ("text", "word"),
        [
            ("stop sending me offers please", "stop"),
            ("Can you STOP sending me offers?", "stop"),
            ("I want to opt out now", "opt out"),
            ("please don't cancel my order", "cancel"),
            ("Basta messaggi grazie", "basta"),
            ("please stop promotions", "stop promotions"),
        ],
    )
    def test_an_opt_out_word_inside_a_message_is_only_possible(self, text: str, word: str) -> None:
        keyword = classify(text)

        assert keyword is not None
        assert (keyword.kind, keyword.word) == (POSSIBLE, word)
        assert not keyword.automatic

    @pytest.mark.parametrize(
        "text",
        ["Hello, where is my order?", "I'm stopping by the shop", "weekend hours?", "start again"],
    )
    def test_messages_without_an_opt_out_word_are_no_keyword(self, text: str) -> None:
        assert classify(text) is None

    @pytest.mark.parametrize("text", ["", "   ", "!!!", "👍"])
    def test_empty_messages_are_no_keyword(self, text: str) -> None:
        assert classify(text) is None


class TestConfiguration:
    def test_words_can_be_added_per_language(self) -> None:
        keywords = Keywords.default().with_words("it", opt_out=["Non scrivermi più"])

        keyword = keywords.classify("NON SCRIVERMI PIÙ!")

        assert keyword is not None
        assert (keyword.kind, keyword.language) == (OPT_OUT, "it")
        assert keyword.version == keywords.version != Keywords.default().version
        assert Keywords.default().classify("non scrivermi più") is None

    def test_added_words_can_narrow_scope_and_categories(self) -> None:
        keywords = Keywords.default().with_words(
            "en", opt_out=["STOP OFFERS"], scope=Scope.SENDER, categories=("offers",)
        )

        keyword = keywords.classify("stop offers")

        assert keyword is not None
        assert (keyword.scope, keyword.categories) == (Scope.SENDER, ("offers",))

    def test_a_word_cannot_mean_two_things(self) -> None:
        with pytest.raises(KeywordConfigError, match="'START' would mean opt_out"):
            Keywords.default().with_words("en", opt_out=["START"])

    def test_repeating_a_word_with_the_same_meaning_is_allowed(self) -> None:
        keywords = Keywords.default().with_words("fr", opt_out=["STOP", "ARRET", "ARRÊT"])

        assert keywords.classify("Arrêt") is not None
        keyword = keywords.classify("stop", region="GB")
        assert keyword is not None
        assert (keyword.language, keyword.languages) == ("en", ("en", "it", "fr"))

    def test_button_payloads_match_exactly(self) -> None:
        keywords = Keywords.default().extended(
            [
                KeywordRule(
                    word="unsubscribe-offers",
                    kind=OPT_OUT,
                    match=Match.BUTTON,
                    categories=("offers",),
                )
            ]
        )

        by_payload = keywords.classify_button("unsubscribe-offers", "No more offers")
        other_case = keywords.classify_button("UNSUBSCRIBE-OFFERS", "No more offers")
        by_title = keywords.classify_button("ignored", "Stop")

        assert by_payload is not None
        assert (by_payload.matched_on, by_payload.categories) == (Match.BUTTON, ("offers",))
        assert by_payload.word == "unsubscribe-offers"
        assert by_payload.language is None
        assert other_case is None
        assert by_title is not None
        assert (by_title.kind, by_title.matched_on) == (OPT_OUT, Match.TEXT)
        typed = keywords.classify("unsubscribe-offers")  # a payload typed as text is no button
        assert typed is not None
        assert typed.kind is POSSIBLE

    def test_from_config_extends_the_defaults(self) -> None:
        keywords = Keywords.from_config(
            {
                "rules": [
                    {"word": "NON SCRIVERMI", "kind": "opt_out", "language": "it"},
                    {"word": "STOP_PROMOS", "kind": "opt_out", "match": "button"},
                ]
            }
        )

        assert kind_of("stop") is OPT_OUT
        assert keywords.classify("non scrivermi") is not None
        assert keywords.classify_button("STOP_PROMOS", None) is not None
        assert len(keywords.rules) == len(Keywords.default().rules) + 2

    def test_from_config_can_start_from_nothing(self) -> None:
        keywords = Keywords.from_config(
            {"defaults": False, "rules": [{"word": "ARRET", "kind": "opt_out", "language": "fr"}]}
        )

        assert keywords.classify("stop") is None
        assert keywords.words(OPT_OUT) == ("ARRET",)

    @pytest.mark.parametrize(
        ("config", "message"),
        [
            ({"rules": "STOP"}, "a keyword configuration is an object"),
            ({"words": []}, "a keyword configuration is an object"),
            ({"rules": [{"word": "X"}]}, "a keyword rule is malformed"),
            ({"rules": [{"word": "?!", "kind": "opt_out"}]}, "nothing is left of it"),
            ({"rules": [{"word": "X", "kind": "possible_opt_out"}]}, "not a rule's kind"),
        ],
    )
    def test_malformed_configurations_say_what_is_wrong(
        self, config: dict[str, object], message: str
    ) -> None:
        with pytest.raises(KeywordConfigError, match=message):
            Keywords.from_config(config)

    def test_category_names_must_be_well_formed(self) -> None:
        """Whether the business has them is checked when a body is ingested for it."""
        with pytest.raises(InvalidInputError, match="'Promos!' is not a category name"):
            KeywordRule(word="STOP PROMOS", kind=OPT_OUT, categories=("Promos!",))

    def test_languages_must_be_tags(self) -> None:
        with pytest.raises(InvalidInputError, match="not a language tag"):
            Keywords.default().with_words("Italian", opt_out=["BASTA"])

    def test_the_version_follows_the_rules(self) -> None:
        rules = Keywords.default().rules

        assert Keywords(rules).version == Keywords.default().version
        assert Keywords(rules[:-1]).version != Keywords.default().version
        assert Keywords.default().version.startswith("sha256:")


# Property: spelling variations never change a classification.

_PUNCTUATION = [".", "!", "?", "!!", "...", ",", ";", " 🛑", "…", " 🙏"]
_SPACES = ["", " ", "  ", "\t", "\n", " \u00a0"]
_SHIPPED = sorted({w for kinds in DEFAULT_WORDS.values() for ws in kinds.values() for w in ws})
_FILLER = ["please", "my", "order", "offers", "thanks", "now", "again", "hello"]


@st.composite
def messages(draw: st.DrawFn) -> str:
    """A shipped keyword, or a few words that may include one."""
    words = draw(st.lists(st.sampled_from(_SHIPPED + _FILLER), min_size=1, max_size=4))
    return " ".join(words)


@st.composite
def variants(draw: st.DrawFn, text: str) -> str:
    """The same message typed differently: case, surrounding spaces, punctuation, inner runs."""
    cased = "".join(
        draw(st.sampled_from([c.upper(), c.lower()])) if c.isascii() else c for c in text
    )
    inner = draw(st.sampled_from([" ", "  ", "\t", " \u00a0 "]))
    spaced = inner.join(cased.split(" "))
    before, after = draw(st.sampled_from(_SPACES)), draw(st.sampled_from(_SPACES))
    ending = draw(st.sampled_from(["", *_PUNCTUATION]))
    return f"{before}{spaced}{ending}{after}"


@given(st.data())
def test_classification_ignores_case_spacing_and_trailing_punctuation(data: st.DataObject) -> None:
    text = data.draw(messages())
    variant = data.draw(variants(text))

    assert classify(variant) == classify(text)
    assert normalise(variant) == normalise(text)
