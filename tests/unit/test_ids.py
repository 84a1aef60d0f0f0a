from donjon.ids import InstanceIds, orthanc_id


def test_vectors_from_the_spec():
    assert orthanc_id("") == "da39a3ee-5e6b4b0d-3255bfef-95601890-afd80709"
    assert orthanc_id("A") == "6dcd4ce2-3d88e2ee-9568ba54-6c007c63-d9131c1b"
    assert orthanc_id(" ABC") == "50ecffbe-1010d1e2-0d5c240a-3e283132-f68a6114"


def test_dummy_ct_identifiers():
    ids = InstanceIds.compute("ozp00SjY2xG", "1.2.840.113619.2.176.2025.1499492.7391.1171285944.390",
                              "1.2.840.113619.2.176.2025.1499492.7391.1171285944.394",
                              "1.2.840.113619.2.176.2025.1499492.7040.1171286242.109")
    assert ids.patient == "6816cb19-844d5aee-85245eba-28e841e6-2414fae2"
    assert ids.study == "b9c08539-26f93bde-c81ab0d7-bffaf2cb-a4d0bdd0"
    assert ids.series == "f2635388-f01d497a-15f7c06b-ad7dba06-c4c599fe"
    assert ids.instance == "66a662ce-7430e543-bad44d47-0dc5a943-ec7a538d"


def test_non_ascii_identifiers_hash_their_utf8_bytes():
    assert orthanc_id("é") != orthanc_id("e")
    assert len(orthanc_id("é")) == 44
