"""Configuration: comments, folders, `${VAR}`, `ORTHANC__*`, the option table and its checks."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from donjon.config import (
    Configuration,
    apply_environment,
    env_token_to_key,
    parse_json_with_comments,
    preprocess,
    read_sources,
    strip_comments,
)
from donjon.config_options import OPTIONS, Option
from donjon.registry import ConfigurationError
from donjon.sample_config import render_sample

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "orthanc-Configuration.json"
if not REFERENCE.is_file():
    REFERENCE = Path("/work/shared/reference/orthanc-Configuration.json")


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None, name: str = "config.json") -> Configuration:
    path = tmp_path / name
    path.write_text(text)
    return Configuration.load([str(path)], env=env or {})


def config_of(raw: dict[str, Any]) -> Configuration:
    return Configuration(json.loads(json.dumps(raw)))


# -- comments ---------------------------------------------------------------------------------------

def test_line_and_block_comments_are_removed(tmp_path: Path) -> None:
    config = load(tmp_path, """{
      // a comment "with quotes"
      "Name" : "Alpha", // trailing comment
      /* a block
         on several lines, with "quotes" and // inside */
      "HttpPort" : 8043 /* inline */ ,
      /**
       * Orthanc-style banner
       **/
      "DicomAet" : "DONJON"
    }""")
    assert (config["Name"], config["HttpPort"], config["DicomAet"]) == ("Alpha", 8043, "DONJON")


def test_comment_markers_inside_strings_are_kept(tmp_path: Path) -> None:
    config = load(tmp_path, r"""{
      "Name" : "a // b /* c */ d",
      "HttpProxy" : "http://user:pw@proxy:3128/",   // a URL is not a comment
      "OrthancPeers" : { "peer" : [ "https://example.org/orthanc/" ] },
      "DefaultPrivateCreator" : "quote \" // still in the string"
    }""")
    assert config["Name"] == "a // b /* c */ d"
    assert config["HttpProxy"] == "http://user:pw@proxy:3128/"
    assert config["OrthancPeers"] == {"peer": ["https://example.org/orthanc/"]}
    assert config["DefaultPrivateCreator"] == 'quote " // still in the string'


def test_strip_comments_keeps_line_numbers() -> None:
    text = '{\n/* one\ntwo\nthree */\n"a": 1, // x\n"b": 2\n}'
    stripped = strip_comments(text)
    assert stripped.count("\n") == text.count("\n")
    assert json.loads(stripped) == {"a": 1, "b": 2}


def test_unterminated_block_comment(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unterminated"):
        load(tmp_path, '{\n"Name": "x" /* never closed\n}')


def test_invalid_json_names_the_file_and_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"bad\.json: invalid JSON at line 3"):
        load(tmp_path, '{\n"Name": "x",\n"HttpPort": ,\n}', name="bad.json")


def test_the_configuration_must_be_an_object() -> None:
    with pytest.raises(ConfigurationError, match="JSON object"):
        parse_json_with_comments("[1, 2]", "x.json")


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b'\xef\xbb\xbf{"Name": "bom"}')
    assert Configuration.load([str(path)], env={})["Name"] == "bom"


# -- folders and several files ------------------------------------------------------------------------

def test_folder_files_are_merged_in_name_order(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "20-override.json").write_text('{"Name": "second", "HttpPort": 9000}')
    (folder / "10-base.json").write_text('{"Name": "first", "DicomAet": "BASE", // comment\n "HttpPort": 8000}')
    (folder / "30-upper.JSON").write_text('{"DicomPort": 4343}')
    (folder / "notes.txt").write_text("not json at all")
    (folder / "sub.json").mkdir()  # a folder, even with a .json name, is skipped
    with caplog.at_level(logging.WARNING, logger="donjon.config"):
        config = Configuration.load([str(folder)], env={})
    assert config["Name"] == "second"
    assert config["HttpPort"] == 9000
    assert config["DicomAet"] == "BASE"
    assert config["DicomPort"] == 4343
    assert "Option Name is defined by" in caplog.text and "20-override.json" in caplog.text


def test_sections_of_several_files_are_merged_key_by_key(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "a.json").write_text('{"DicomModalities": {"one": ["ONE", "host1", 104]}}')
    (folder / "b.json").write_text('{"DicomModalities": {"two": ["TWO", "host2", 104]}}')
    config = Configuration.load([str(folder)], env={})
    assert set(config["DicomModalities"]) == {"one", "two"}


def test_several_paths_later_ones_win(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"Name": "a", "HttpPort": 1111}')
    (tmp_path / "b.json").write_text('{"Name": "b"}')
    config = Configuration.load([str(tmp_path / "a.json"), str(tmp_path / "b.json")], env={})
    assert (config["Name"], config["HttpPort"]) == ("b", 1111)


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Inexistent path to configuration"):
        Configuration.load([str(tmp_path / "nope.json")], env={})


def test_relative_paths_are_relative_to_the_configuration(tmp_path: Path) -> None:
    config = load(tmp_path, '{"StorageDirectory": "storage", "IndexDirectory": "/abs/index"}')
    assert config.path("StorageDirectory") == str(tmp_path / "storage")
    assert config.path("IndexDirectory") == "/abs/index"
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    assert Configuration.load([str(folder)], env={}).path("StorageDirectory") == str(folder / "OrthancStorage")


def test_no_configuration_gives_the_defaults() -> None:
    config = Configuration.load([], env={})
    for name, option in OPTIONS.items():
        assert config[name] == option.default, name
    assert not config.is_set("HttpPort")


def test_null_means_not_set(tmp_path: Path) -> None:
    config = load(tmp_path, '{"HttpPort": null, "IndexDirectory": null}')
    assert config["HttpPort"] == 8042
    assert not config.is_set("IndexDirectory")


# -- ${VAR} -------------------------------------------------------------------------------------------

def test_variables_in_strings(tmp_path: Path) -> None:
    env = {"DJ_NAME": "Donjon", "DJ_DIR": "/data", "DJ_EMPTY": ""}
    config = load(tmp_path, """{
      "Name" : "${DJ_NAME}",
      "StorageDirectory" : "${DJ_DIR}/storage",
      "DicomAet" : "${DJ_AET:-DEFAULT_AET}",
      "HttpProxy" : "${DJ_EMPTY:-not used}",
      "DefaultPrivateCreator" : "${DJ_MISSING:-"quoted: } default"}",
      "SslCertificate" : "${DJ_MISSING:-'single'}"
    }""", env)
    assert config["Name"] == "Donjon"
    assert config["StorageDirectory"] == "/data/storage"
    assert config["DicomAet"] == "DEFAULT_AET"
    assert config["HttpProxy"] == ""  # a variable set to "" is used, as in Orthanc
    assert config["DefaultPrivateCreator"] == "quoted: } default"
    assert config["SslCertificate"] == "single"


def test_variables_outside_strings_give_numbers_and_booleans(tmp_path: Path) -> None:
    config = load(tmp_path, '{"HttpPort": ${DJ_PORT}, "DicomPort": ${DJ_DICOM:-4343}, "SslEnabled": ${DJ_SSL:-false}}',
                  {"DJ_PORT": "8044"})
    assert (config["HttpPort"], config["DicomPort"], config["SslEnabled"]) == (8044, 4343, False)


def test_variable_values_are_escaped_inside_strings(tmp_path: Path) -> None:
    config = load(tmp_path, '{"Name": "${DJ_NAME}", "StorageDirectory": "${DJ_WIN}"}',
                  {"DJ_NAME": 'say "hi"', "DJ_WIN": "C:\\Orthanc\\Storage"})
    assert config["Name"] == 'say "hi"'
    assert config["StorageDirectory"] == "C:\\Orthanc\\Storage"


def test_missing_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as e:
        load(tmp_path, '{\n  "Name": "x",\n  "DicomAet": "${DJ_NOT_SET}"\n}')
    message = str(e.value)
    assert "DJ_NOT_SET" in message and "line 3" in message and '"DicomAet"' in message


def test_variables_in_comments_are_ignored(tmp_path: Path) -> None:
    config = load(tmp_path, '{\n// "Name": "${DJ_NOT_SET}"\n/* ${DJ_NOT_SET_EITHER} */ "Name": "ok"}')
    assert config["Name"] == "ok"


def test_text_that_is_not_a_variable_is_kept(tmp_path: Path) -> None:
    config = load(tmp_path, '{"Name": "cost: $5 ${not a var} $HOME"}')
    assert config["Name"] == "cost: $5 ${not a var} $HOME"


def test_preprocess_without_environment_keeps_variables() -> None:
    assert preprocess('{"a": "${X}"} // c') == '{"a": "${X}"} '


# -- ORTHANC__ ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("token", "key"), [
    ("STABLE_AGE", "StableAge"),
    ("QUERY_RETRIEVE_SIZE", "QueryRetrieveSize"),
    ("DICOM_WEB", "DicomWeb"),
    ("STUDIES_METADATA", "StudiesMetadata"),
    ("ORTHANC_EXPLORER_2", "OrthancExplorer2"),
])
def test_docker_naming_rule(token: str, key: str) -> None:
    assert env_token_to_key(token) == key


def test_environment_sets_top_level_options_with_their_types() -> None:
    config = Configuration.load([], env={
        "ORTHANC__HTTP_PORT": "8050",
        "ORTHANC__REMOTE_ACCESS_ALLOWED": "true",
        "ORTHANC__NAME": "123",  # a string option keeps the text
        "ORTHANC__DICOM_AET": "ENVAET",
        "ORTHANC__ACCEPTED_TRANSFER_SYNTAXES": '["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]',
        "ORTHANC__CASE_SENSITIVE_PN": "true",
        "ORTHANC__HTTPS_CA_CERTIFICATES": "/etc/ssl/certs/ca-certificates.crt",
        "ORTHANC__STORE_MD5_FOR_ATTACHMENTS": "false",
        "OTHER_VARIABLE": "ignored",
    })
    assert config["HttpPort"] == 8050
    assert config["RemoteAccessAllowed"] is True
    assert config["Name"] == "123"
    assert config["DicomAet"] == "ENVAET"
    assert config["AcceptedTransferSyntaxes"] == ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]
    assert config["CaseSensitivePN"] is True
    assert config["HttpsCACertificates"] == "/etc/ssl/certs/ca-certificates.crt"
    assert config["StoreMD5ForAttachments"] is False
    assert config.origins["HttpPort"] == "ORTHANC__HTTP_PORT"


def test_environment_sets_nested_sections() -> None:
    raw: dict[str, Any] = {}
    apply_environment(raw, {
        "ORTHANC__POSTGRESQL__HOST": "db.example.org",
        "ORTHANC__POSTGRESQL__PORT": "5433",
        "ORTHANC__POSTGRESQL__ENABLE_INDEX": "true",
        "ORTHANC__DICOM_WEB__ROOT": "/dicom-web/",
        "ORTHANC__DICOM_WEB__SERVERS": '{"sample": ["http://127.0.0.1/dicom-web/"]}',
    })
    assert raw["PostgreSQL"] == {"Host": "db.example.org", "Port": 5433, "EnableIndex": True}
    assert raw["DicomWeb"] == {"Root": "/dicom-web/", "Servers": {"sample": ["http://127.0.0.1/dicom-web/"]}}
    Configuration(raw)  # known plugin sections: no error


def test_environment_matches_the_keys_already_in_a_section(tmp_path: Path) -> None:
    config = load(tmp_path, '{"PostgreSQL": {"EnableSSL": false, "Host": "file-host"}}',
                  {"ORTHANC__POSTGRESQL__ENABLE_SSL": "true"})
    assert config["PostgreSQL"] == {"EnableSSL": True, "Host": "file-host"}


def test_environment_json_values_merge_into_sections(tmp_path: Path) -> None:
    config = load(tmp_path, '{"DicomModalities": {"file": ["FILE", "10.0.0.1", 104]}, "HttpPort": 8042}', {
        "ORTHANC__DICOM_MODALITIES": '{"pacs": ["PACS", "10.0.0.2", 11112]}',
        "ORTHANC__REGISTERED_USERS": '{"alice": "secret"}',
        "ORTHANC__HTTP_PORT": "8060",
    })
    assert config["DicomModalities"] == {"file": ["FILE", "10.0.0.1", 104], "pacs": ["PACS", "10.0.0.2", 11112]}
    assert config["RegisteredUsers"] == {"alice": "secret"}
    assert config["HttpPort"] == 8060  # the environment wins over the files


def test_more_precise_variables_win() -> None:
    raw: dict[str, Any] = {}
    apply_environment(raw, {"ORTHANC__DICOM_WEB__ROOT": "/precise/", "ORTHANC__DICOM_WEB": '{"Root": "/broad/", "Enable": true}'})
    assert raw["DicomWeb"] == {"Root": "/precise/", "Enable": True}


def test_orthanc_json_variable(tmp_path: Path) -> None:
    config = load(tmp_path, '{"Name": "file", "HttpPort": 8042}', {
        "ORTHANC_JSON": '{"Name": "json", // comment\n "DicomAet": "JSONAET"}',
        "ORTHANC__DICOM_AET": "ENVAET",
    })
    assert (config["Name"], config["DicomAet"], config["HttpPort"]) == ("json", "ENVAET", 8042)


def test_secret_files(tmp_path: Path) -> None:
    secret = tmp_path / "pg-password"
    secret.write_text("s3cret\n")
    config = Configuration.load([], env={"ORTHANC__POSTGRESQL__PASSWORD_SECRET": str(secret),
                                         "ORTHANC__POSTGRESQL__PASSWORD": "overridden"})
    assert config["PostgreSQL"] == {"Password": "s3cret"}
    with pytest.raises(ConfigurationError, match="ORTHANC__NAME_SECRET"):
        Configuration.load([], env={"ORTHANC__NAME_SECRET": str(tmp_path / "missing")})


def test_bad_environment_value_names_the_option_and_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r'"HttpPort".*ORTHANC__HTTP_PORT'):
        Configuration.load([], env={"ORTHANC__HTTP_PORT": "eighty"})


def test_empty_levels_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    raw: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING, logger="donjon.config"):
        apply_environment(raw, {"ORTHANC__": "x", "ORTHANC__A____B": "y"})
    assert raw == {}
    assert "ORTHANC__A____B" in caplog.text


# -- every option, its type and its value --------------------------------------------------------------

_WRONG_BY_KIND: dict[str, Any] = {
    "bool": "maybe",
    "int": "many",
    "uint": -1,
    "float": "much",
    "str": 42,
    "str-list": ["ok", 3],
    "list": {"not": "a list"},
    "dict": ["not", "an", "object"],
    "str-or-list": 3.5,
}


@pytest.mark.parametrize("name", sorted(n for n, o in OPTIONS.items() if o.kind != "any"))
def test_every_option_checks_its_type(name: str) -> None:
    option = OPTIONS[name]
    with pytest.raises(ConfigurationError, match=f'"{name}"'):
        config_of({name: _WRONG_BY_KIND[option.kind]})


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_every_default_is_valid(name: str) -> None:
    option = OPTIONS[name]
    assert option.kind in ("bool", "int", "uint", "float", "str", "str-list", "list", "dict", "str-or-list", "any")
    assert option.doc
    if option.default is not None:
        assert option.check(option.default_value()) == option.default
    if option.example is not None:
        option.check(option.example)


def test_lenient_strings_for_booleans_and_integers() -> None:
    config = config_of({"SslEnabled": "TRUE", "HttpPort": " 8045 ", "StableAge": 5.0})
    assert (config["SslEnabled"], config["HttpPort"], config["StableAge"]) == (True, 8045, 5)


@pytest.mark.parametrize(("name", "value"), [
    ("HttpPort", 0), ("HttpPort", 65536), ("DicomPort", 70000),
    ("MaximumStorageMode", "reject"), ("MaximumStorageMode", "Delete"),
    ("StorageAccessOnFind", "Sometimes"), ("BuiltinDecoderTranscoderOrder", "Later"),
    ("DefaultEncoding", "Klingon"), ("DeidentifyLogsDicomVersion", "2020"),
    ("DicomAet", ""), ("DicomAet", "A" * 17),
    ("DicomScuPreferredTransferSyntax", "1.2.3.4"), ("IngestTranscoding", "not a uid"),
    ("MaximumPduLength", 1024), ("MaximumPduLength", 200000),
    ("DicomLossyTranscodingQuality", 0), ("DicomLossyTranscodingQuality", 101),
    ("StorageCompressionLevel", 0), ("StorageCompressionLevel", 10),
    ("IndexSyncInterval", -0.1), ("IndexSyncInterval", 61), ("IndexSyncInterval", "nan"),
    ("SslMinimumProtocolVersion", 6), ("HttpThreadsCount", 0), ("DicomThreadsCount", 0),
    ("DatabaseServerIdentifier", ""),
    ("RegisteredUsers", {"alice": 123}),
    ("Dictionary", {"0014,1020": ["DA"]}), ("Dictionary", {"bad tag": ["DA", "Name"]}),
    ("ExtraMainDicomTags", {"Image": ["Rows"]}), ("Warnings", {"W001": "yes"}),
    ("Pkcs11", {"Pin": "1234"}), ("JobsEngineThreadsCount", {"ResourceModification": -1}),
])
def test_values_out_of_range_refuse_to_start(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f'"{name}"'):
        config_of({name: value})


@pytest.mark.parametrize(("name", "value"), [
    ("DicomModalities", {"bad name!": ["AET", "host", 104]}),
    ("DicomModalities", {"pacs": ["AET", "host"]}),
    ("DicomModalities", {"pacs": ["AET", "host", 0]}),
    ("DicomModalities", {"pacs": ["AET", "host", "port"]}),
    ("DicomModalities", {"pacs": ["AET", "host", 104, "Unknown"]}),
    ("DicomModalities", {"pacs": {"AET": "AET", "Host": "host"}}),
    ("DicomModalities", {"pacs": "AET@host:104"}),
    ("OrthancPeers", {"peer": ["ftp://host/"]}),
    ("OrthancPeers", {"peer": ["http://host/", "user"]}),
    ("OrthancPeers", {"peer": {"Username": "alice"}}),
])
def test_modalities_and_peers_are_checked(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f'"{name}"'):
        config_of({name: value})


def test_good_modalities_and_peers() -> None:
    config = config_of({
        "DicomModalities": {"a": ["A", "h", 104], "b": ["B", "h", "11112", "GE"],
                            "c": {"AET": "C", "Host": "h", "Port": 104, "AllowStore": False}},
        "OrthancPeers": {"p": ["http://h:8042/"], "q": ["https://h/", "u", "p"], "r": {"Url": "http://h/"}},
    })
    assert set(config["DicomModalities"]) == {"a", "b", "c"}


def test_choices_and_canonical_values() -> None:
    config = config_of({"DefaultEncoding": "utf8", "MaximumStorageMode": "Reject", "StorageAccessOnFind": "Never"})
    assert config["DefaultEncoding"] == "Utf8"
    assert config["MaximumStorageMode"] == "Reject"
    assert config["StorageAccessOnFind"] == "Never"


def test_str_or_list_options_accept_a_string() -> None:
    assert config_of({"AcceptedTransferSyntaxes": "1.2.840.10008.1.2"})["AcceptedTransferSyntaxes"] == [
        "1.2.840.10008.1.2"]


def test_aet_with_lower_case_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert config_of({"DicomAet": "donjon"})["DicomAet"] == "donjon"
    assert "best interoperability" in caplog.text


def test_options_checked_together() -> None:
    with pytest.raises(ConfigurationError, match="CheckRevisions"):
        config_of({"CheckRevisions": True, "StoreMD5ForAttachments": False})
    config_of({"CheckRevisions": True})


def test_unknown_options_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="donjon.config"):
        config = config_of({"HttpPorts": 1234, "MyOwnSetting": True, "HttpPort": 8046})
    assert config["HttpPort"] == 8046
    assert config.unknown == ["HttpPorts", "MyOwnSetting"]
    assert "Unknown configuration option ignored: HttpPorts" in caplog.text
    assert 'did you mean "HttpPort"' in caplog.text
    assert "Unknown configuration option ignored: MyOwnSetting" in caplog.text


def test_plugin_sections_are_known(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="donjon.config"):
        config = config_of({"PostgreSQL": {"EnableIndex": True}, "DicomWeb": {"Enable": True},
                            "Python": {"Path": "x.py"}, "PythonScript": "x.py", "Worklists": {"Enable": False}})
    assert config.unknown == []
    assert "Unknown" not in caplog.text


# -- user-defined metadata and attachments (checked by the registry) -----------------------------------

@pytest.mark.parametrize(("option", "value", "message"), [
    ("UserMetadata", {"Sample": 1023}, "outside 1024..65535"),
    ("UserMetadata", {"Sample": 65536}, "outside"),
    ("UserMetadata", {"Sample": "1024"}, "not a number"),
    ("UserMetadata", {"A": 2000, "B": 2000}, "already used"),
    ("UserMetadata", {"1234": 2000}, "must not be an integer"),
    ("UserMetadata", {"ReceptionDate": 2000}, "already in use"),
    ("UserContentType", {"pdf": [1025]}, "number or"),
    ("UserContentType", {"pdf": [1025, 3]}, "number or"),
    ("UserContentType", {"pdf": 12}, "outside"),
    ("UserContentType", {"dicom": 2000}, "already in use"),
])
def test_user_metadata_and_content_types_are_checked(option: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=option) as e:
        config_of({option: value})
    assert message in str(e.value)


def test_good_user_metadata_and_content_types() -> None:
    config = config_of({"UserMetadata": {"Sample": 1024}, "UserContentType": {"pdf": [1025, "application/pdf"]}})
    assert config["UserMetadata"] == {"Sample": 1024}


# -- the sample and Orthanc's reference ---------------------------------------------------------------

def test_sample_loads_back_to_the_defaults(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="donjon.config"):
        config = load(tmp_path, render_sample())
    assert config.unknown == []
    for name, option in OPTIONS.items():
        assert config[name] == option.default, name
    shown = {n for n, o in OPTIONS.items() if o.in_sample and o.default is not None}
    assert set(config.raw) == shown
    assert "Unknown" not in caplog.text


def test_sample_documents_every_option_of_the_sample() -> None:
    text = render_sample()
    for name, option in OPTIONS.items():
        assert (f'"{name}" :' in text) == option.in_sample, name


def _reference_options() -> tuple[dict[str, Any], set[str]]:
    if not REFERENCE.is_file():
        pytest.skip("shared/reference/orthanc-Configuration.json is missing")
    text = REFERENCE.read_text()
    active = parse_json_with_comments(text, str(REFERENCE))
    # top-level options that the reference shows commented out (2 to 5 spaces of indentation)
    commented = set(re.findall(r'^ {2,5}(?://\s*)?"([A-Z][A-Za-z0-9]+)"\s*:', text, re.M))
    nested = {"ResourceModification", "AET", "Port", "Host", "Manufacturer", "Timeout", "Url", "Username",
              "Password", "HttpHeaders", "CertificateFile", "CertificateKeyFile", "CertificateKeyPassword",
              "Pkcs11", "LocalAet", "UseDicomTls", "Sample", "Instance", "Series", "Study", "Patient"}
    commented = {n for n in commented if not n.startswith("Allow")} - (nested - {"Pkcs11"})
    return active, commented | set(active)


def test_every_option_of_orthanc_reference_is_known() -> None:
    _, names = _reference_options()
    missing = sorted(n for n in names if n not in OPTIONS)
    assert missing == []


# Values of Orthanc's sample file that are not the default of Orthanc's code (or of Donjon)
_SAMPLE_IS_NOT_DEFAULT = {
    "Name": "MyOrthanc",  # the code's default is ""
    "IndexDirectory": "OrthancStorage",  # unset: falls back to StorageDirectory
    "SslTrustedClientCertificates": "trustedClientCertificates.pem",  # the code says trustedCertificates.pem
}


def test_defaults_match_orthanc_reference() -> None:
    active, _ = _reference_options()
    for name, value in active.items():
        if name in _SAMPLE_IS_NOT_DEFAULT:
            assert value == _SAMPLE_IS_NOT_DEFAULT[name]
            assert OPTIONS[name].default != value
        else:
            assert OPTIONS[name].default == value, name


def test_option_api() -> None:
    option = OPTIONS["HttpPort"]
    assert isinstance(option, Option)
    assert (option.name, option.default, option.kind, option.in_sample) == ("HttpPort", 8042, "uint", True)
    value = OPTIONS["JobsEngineThreadsCount"].default_value()
    value["ResourceModification"] = 9
    assert OPTIONS["JobsEngineThreadsCount"].default == {"ResourceModification": 1}


def test_read_sources_reports_origins(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"DicomModalities": {"x": ["X", "h", 1]}, "Name": "a"}')
    origins: dict[str, str] = {}
    raw = read_sources([str(tmp_path / "a.json")], {}, origins)
    assert raw["Name"] == "a"
    assert origins["Name"].endswith("a.json") and origins["DicomModalities"].endswith("a.json")
