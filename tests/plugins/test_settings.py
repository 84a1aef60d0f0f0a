"""The Python plugin's options: checked at start-up, with Orthanc's precedence and Donjon's timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from donjon.config import Configuration
from donjon.plugins.settings import DEFAULT_CALLBACK_TIMEOUT, python_settings
from donjon.registry import ConfigurationError


def test_no_script_means_no_plugin() -> None:
    assert python_settings(Configuration({})) is None
    assert python_settings(Configuration({"Python": {"Verbose": True}})) is None


def test_python_script_wins_over_the_section(tmp_path: Path) -> None:
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text("")
    second.write_text("")
    settings = python_settings(Configuration({"PythonScript": str(first), "Python": {"Path": str(second)}}))
    assert settings is not None and settings.script == str(first)
    assert settings.callback_timeout == DEFAULT_CALLBACK_TIMEOUT
    settings = python_settings(Configuration({"Python": {"Path": str(second), "CallbackTimeout": 2.5}}))
    assert settings is not None and settings.script == str(second) and settings.callback_timeout == 2.5


@pytest.mark.parametrize("section, message", [
    ({"CallbackTimeout": 0}, r"Python\.CallbackTimeout"),
    ({"CallbackTimeout": "10"}, r"Python\.CallbackTimeout"),
    ({"Path": 3}, r"Python\.Path"),
    ({"Verbose": "yes"}, r"Python\.Verbose"),
    ("script.py", '"Python"'),
])
def test_bad_section_is_refused(section: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Configuration({"Python": section})


def test_the_script_must_be_an_existing_py_file(tmp_path: Path) -> None:
    text = tmp_path / "script.txt"
    text.write_text("")
    with pytest.raises(ConfigurationError, match=r'"\.py" file extension'):
        python_settings(Configuration({"PythonScript": str(text)}))
    with pytest.raises(ConfigurationError, match="Inexistent Python script"):
        python_settings(Configuration({"PythonScript": str(tmp_path / "missing.py")}))


def test_configuration_path_is_orthancs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`GetConfigurationPath()`: the absolute path of the file; for a folder, the folder's parent (as
    boost's `parent_path()`, so `conf/` gives `conf`); empty without configuration."""
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert Configuration.load([str(folder / "a.json")]).configuration_path == str(folder / "a.json")
    assert Configuration.load(["conf/a.json"]).configuration_path == str(tmp_path / "conf" / "a.json")
    assert Configuration.load([str(folder)]).configuration_path == str(tmp_path)
    assert Configuration.load(["conf/"]).configuration_path == str(folder)
    assert Configuration.load([]).configuration_path == ""


def test_without_a_script_plugins_are_enabled_and_none_is_listed() -> None:
    """As an Orthanc built with plugin support that loads none."""
    from tests.support.servers import start_donjon

    server = start_donjon()
    try:
        assert server.get("/plugins").json() == ["explorer.js"]
        assert server.get("/plugins/python").status_code == 404
        js = server.get("/plugins/explorer.js")
        assert js.status_code == 200 and js.headers["content-type"] == "application/javascript"
        assert js.text == "// Extensions to Orthanc Explorer by the registered plugins\n\n"
        system = server.get("/system").json()
        assert system["PluginsEnabled"] is True and system["StorageAreaPlugin"] is None
    finally:
        server.stop()
