"""links.host_routes while other programs add and remove interfaces: a route whose interface
went away between the route dump and the link lookup is skipped, not a crash."""

import errno

from pyroute2.netlink.exceptions import NetlinkError

from kago.network import links


class Msg(dict):
    def get_attr(self, name):
        return self.get(name)


class FakeIPRoute:
    def __init__(self, routes, links_by_index):
        self.routes, self.links = routes, links_by_index

    def route(self, op, family, table):
        return self.routes

    def link(self, op, index):
        if index not in self.links:
            raise NetlinkError(errno.ENODEV, "No such device")
        return [Msg(IFLA_IFNAME=self.links[index])]


def test_a_route_whose_interface_vanished_is_skipped():
    ipr = FakeIPRoute([Msg(RTA_DST="10.1.0.0", RTA_OIF=2, dst_len=24),
                       Msg(RTA_DST="10.2.0.0", RTA_OIF=99, dst_len=24),
                       Msg(RTA_DST=None, RTA_OIF=2, dst_len=0)], {2: "eth0"})
    got = links.host_routes(ipr, 4)
    assert [(str(net), dev) for net, dev in got] == [("10.1.0.0/24", "eth0")]


def test_other_netlink_errors_still_raise():
    class Broken(FakeIPRoute):
        def link(self, op, index):
            raise NetlinkError(errno.EPERM, "Operation not permitted")
    ipr = Broken([Msg(RTA_DST="10.1.0.0", RTA_OIF=2, dst_len=24)], {})
    try:
        links.host_routes(ipr, 4)
    except NetlinkError as e:
        assert e.code == errno.EPERM
    else:
        raise AssertionError("EPERM was swallowed")
