import pytest

from composer.core.errors import ReleaseError
from composer.core.release import Release, parse_release, server_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [("23.03", Release(23, 3)), ("23.08", Release(23, 8)), ("24.10", Release(24, 10)), (" 26.01 ", Release(26, 1))],
)
def test_accepts_yy_mm_releases_from_23_03(text: str, expected: Release) -> None:
    assert parse_release(text) == expected


@pytest.mark.parametrize("text", ["23.8", "2308", "23.13", "latest", "", None, "23.00", "v23.08", "23.08-py3"])
def test_refuses_malformed_release_with_expected_form(text: object) -> None:
    with pytest.raises(ReleaseError) as info:
        parse_release(text)
    assert "YY.MM" in info.value.one_line()


@pytest.mark.parametrize("text", ["23.02", "22.12", "20.01"])
def test_refuses_releases_before_23_03_naming_perf_analyzer(text: str) -> None:
    with pytest.raises(ReleaseError) as info:
        parse_release(text)
    line = info.value.one_line()
    assert "23.03" in line and "perf_analyzer" in line


def test_unquoted_yaml_float_release_explains_quoting() -> None:
    with pytest.raises(ReleaseError) as info:
        parse_release(24.1, field="stack.yaml: release")
    assert "quote" in info.value.one_line() and "stack.yaml: release" in info.value.one_line()


@pytest.mark.parametrize(
    ("release", "version"),
    [
        ("23.03", "2.32.0"),
        ("23.08", "2.37.0"),
        ("24.01", "2.42.0"),
        ("24.10", "2.51.0"),
        ("24.12", "2.53.0"),
        ("25.07", "2.59.1"),
        ("25.08", "2.60.0"),
        ("25.12", "2.64.0"),
        ("26.01", "2.65.0"),
        ("26.08", "2.72.0"),
    ],
)
def test_maps_release_to_known_server_version(release: str, version: str) -> None:
    assert server_version(parse_release(release)) == version


@pytest.mark.parametrize(("release", "version"), [("23.05", "2.34.0"), ("25.06", "2.59.0"), ("25.10", "2.62.0")])
def test_formula_covers_releases_not_in_table(release: str, version: str) -> None:
    assert server_version(parse_release(release)) == version
