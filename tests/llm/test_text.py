"""StopScanner: UTF-8 pieces and stop strings that span token boundaries."""

from appliance.llm.text import StopScanner


def feed_all(scanner: StopScanner, pieces: list[bytes]) -> str:
    out = "".join(scanner.feed(p) for p in pieces)
    return out + scanner.flush()


def test_passes_text_through_without_stops() -> None:
    assert feed_all(StopScanner([]), [b"Hello", b" world"]) == "Hello world"


def test_never_splits_a_utf8_character() -> None:
    scanner = StopScanner([])
    euro = "€".encode()
    assert scanner.feed(euro[:1]) == ""
    assert scanner.feed(euro[1:]) == "€"


def test_stop_string_across_pieces_is_cut_and_never_shown() -> None:
    scanner = StopScanner(["END"])
    shown = [scanner.feed(p) for p in [b"abc E", b"N", b"D more"]]
    assert "".join(shown) == "abc "
    assert scanner.stopped
    assert scanner.flush() == ""


def test_held_back_prefix_is_released_when_it_is_not_a_stop() -> None:
    scanner = StopScanner(["END"])
    assert scanner.feed(b"abc EN") == "abc "
    assert scanner.feed(b"O") == "ENO"
    assert not scanner.stopped


def test_earliest_of_several_stops_wins() -> None:
    assert feed_all(StopScanner(["zz", "b"]), [b"aabzz"]) == "aa"
