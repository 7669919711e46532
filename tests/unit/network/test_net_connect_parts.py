"""The pure parts of a further network (``Networks.connect``): its key, an attachment that
answers to its owner's id, the owner's /etc/hosts with its further addresses, the resolver
table's names, and the round trip of ``owner``."""

from kago.network import Attachment, files
from kago.network.dns import table
from kago.network.networks import extra_key

OWNER = "a" * 64


def further(**kw):
    base = dict(cid=extra_key(OWNER, "back"), mode="bridge", network="back", ipv4="10.9.0.5",
                hostname="web", aliases=("api",), owner=OWNER, ifname="eth1")
    base.update(kw)
    return Attachment(**base)


def test_the_key_and_the_names_are_the_owners():
    att = further()
    assert att.cid == OWNER + "+back"
    assert att.names == ["web", "api", OWNER]
    # (a 64-character id is no DNS label: its first 12 characters are)
    assert table.member_names(att.to_dict()) == ["web", "api", OWNER[:12]]
    assert table.member_names(further(cid="c1+back", owner="c1")) == ["web", "api", "c1"]


def test_owner_round_trips_and_an_older_record_has_none():
    att = further()
    assert Attachment.from_dict(att.to_dict()) == att
    old = att.to_dict()
    del old["owner"]
    assert Attachment.from_dict(old).owner is None


def test_the_owners_hosts_has_its_names_on_each_address_then_peers():
    first = Attachment(OWNER, "bridge", "front", ipv4="10.8.0.2", hostname="web")
    text = files.hosts_text("web", first, [("db", "10.9.0.7")], also=["10.9.0.5"])
    assert text.splitlines()[2:] == [f"10.8.0.2\tweb {OWNER}", f"10.9.0.5\tweb {OWNER}",
                                     "10.9.0.7\tdb"]


def test_the_resolver_table_answers_the_further_address_for_the_owners_names():
    record = {"name": "back", "subnet": "10.9.0.0/24", "gateway": "10.9.0.1"}
    built = table.build(record, [further().to_dict()])
    assert built["names"]["web"]["4"] == ["10.9.0.5"]
    assert built["names"][OWNER[:12]]["4"] == ["10.9.0.5"]
    assert extra_key(OWNER, "back") not in built["names"]
    assert built["ptr"] == {"10.9.0.5": "web"}


def test_a_view_answers_its_client_only_after_the_networks_own_names():
    record = {"name": "front", "subnet": "10.8.0.0/24", "gateway": "10.8.0.1"}
    app = {"cid": OWNER, "network": "front", "ipv4": "10.8.0.2", "hostname": "app"}
    web = {"cid": "w1", "network": "back", "ipv4": "10.9.0.7", "hostname": "web"}
    clash = {"cid": "w2", "network": "back", "ipv4": "10.9.0.8", "hostname": "app"}
    built = table.build(record, [app], views={"10.8.0.2": [web, clash]})
    assert table.lookup(built, "web", "4", "10.8.0.2") == ["10.9.0.7"]
    assert table.lookup(built, "web", "4", "10.8.0.3") is None       # another client
    assert table.lookup(built, "web", "4") is None
    assert table.lookup(built, "app", "4", "10.8.0.2") == ["10.8.0.2"]  # its network's first
    assert "views" not in table.build(record, [app])
