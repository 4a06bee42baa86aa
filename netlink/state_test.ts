import assert from "node:assert/strict";
import {
  defaultRouteInterfaces,
  findLink,
  IpJsonError,
  isUsableAddress,
  parseAddressShow,
  parseDefaultRoutes,
} from "./state.ts";

// Real `ip -json address show` output (iproute2 6.1) with one address per interesting flag.
const ADDRESS_SHOW = JSON.stringify([
  {
    ifindex: 1,
    ifname: "lo",
    flags: ["LOOPBACK", "UP", "LOWER_UP"],
    link_type: "loopback",
    address: "00:00:00:00:00:00",
    addr_info: [
      { family: "inet", local: "127.0.0.1", prefixlen: 8, scope: "host", label: "lo" },
      { family: "inet6", local: "::1", prefixlen: 128, scope: "host" },
    ],
  },
  {
    ifindex: 2,
    ifname: "eth0",
    flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
    link_type: "ether",
    address: "EE:90:85:C5:38:4D",
    addr_info: [
      { family: "inet", local: "192.0.2.11", prefixlen: 24, scope: "global", label: "eth0" },
      {
        family: "inet",
        local: "192.0.2.12",
        prefixlen: 24,
        scope: "global",
        secondary: true,
        label: "eth0",
      },
      {
        family: "inet6",
        local: "2001:db8:1::13",
        prefixlen: 64,
        scope: "global",
        nodad: true,
        dynamic: true,
        valid_life_time: 100,
        preferred_life_time: 50,
      },
      {
        family: "inet6",
        local: "2001:db8:1::12",
        prefixlen: 64,
        scope: "global",
        nodad: true,
        deprecated: true,
        preferred_life_time: 0,
      },
      {
        family: "inet6",
        local: "2001:DB8:1:0::11",
        prefixlen: 64,
        scope: "global",
        nodad: true,
        mngtmpaddr: true,
        noprefixroute: true,
      },
      {
        family: "inet6",
        local: "fe80::ec90:85ff:fec5:384d",
        prefixlen: 64,
        scope: "link",
        tentative: true,
      },
      {
        family: "inet6",
        local: "2001:db8:1::66",
        prefixlen: 64,
        scope: "global",
        dadfailed: true,
        tentative: true,
      },
    ],
  },
  { ifindex: 3, ifname: "kube-lb0", flags: ["BROADCAST", "NOARP"], link_type: "ether" },
]);

Deno.test("parseAddressShow reads links, MACs, up state and addresses in canonical form", () => {
  const links = parseAddressShow(ADDRESS_SHOW);
  assert.deepEqual(links.map((link) => [link.index, link.name, link.up, link.lowerUp]), [
    [1, "lo", true, true],
    [2, "eth0", true, true],
    [3, "kube-lb0", false, false],
  ]);
  const eth0 = links[1];
  assert.ok(eth0);
  assert.equal(eth0.mac, "ee:90:85:c5:38:4d");
  assert.equal(eth0.linkType, "ether");
  assert.deepEqual(eth0.addresses.map((a) => `${a.family} ${a.local}/${a.prefixLength}`), [
    "IPv4 192.0.2.11/24",
    "IPv4 192.0.2.12/24",
    "IPv6 2001:db8:1::13/64",
    "IPv6 2001:db8:1::12/64",
    "IPv6 2001:db8:1::11/64",
    "IPv6 fe80::ec90:85ff:fec5:384d/64",
    "IPv6 2001:db8:1::66/64",
  ]);
  assert.equal(links[2]?.mac, undefined);
  assert.deepEqual(links[2]?.addresses, []);
  assert.equal(findLink({ links, defaultRoutes: [] }, "kube-lb0")?.index, 3);
  assert.equal(findLink({ links, defaultRoutes: [] }, "nope"), undefined);
});

Deno.test("parseAddressShow reads every flag; permanent is the absence of dynamic", () => {
  const eth0 = parseAddressShow(ADDRESS_SHOW)[1];
  assert.ok(eth0);
  const byAddress = new Map(eth0.addresses.map((address) => [address.local, address]));
  const flagsOf = (local: string) => {
    const address = byAddress.get(local);
    assert.ok(address, local);
    return Object.entries(address.flags).filter(([, on]) => on).map(([name]) => name).sort();
  };
  assert.deepEqual(flagsOf("192.0.2.11"), ["permanent"]);
  assert.deepEqual(flagsOf("192.0.2.12"), ["permanent", "secondary"]);
  assert.deepEqual(flagsOf("2001:db8:1::13"), ["nodad"]);
  assert.deepEqual(flagsOf("2001:db8:1::12"), ["deprecated", "nodad", "permanent"]);
  assert.deepEqual(flagsOf("2001:db8:1::11"), [
    "mngtmpaddr",
    "nodad",
    "noprefixroute",
    "permanent",
  ]);
  assert.deepEqual(flagsOf("fe80::ec90:85ff:fec5:384d"), ["permanent", "tentative"]);
  assert.deepEqual(flagsOf("2001:db8:1::66"), ["dadfailed", "permanent", "tentative"]);
  assert.equal(byAddress.get("192.0.2.12")?.label, "eth0");
});

Deno.test("isUsableAddress: IPv6 unless tentative, dadfailed or deprecated", () => {
  const eth0 = parseAddressShow(ADDRESS_SHOW)[1];
  assert.ok(eth0);
  const usable = eth0.addresses.filter(isUsableAddress).map((address) => address.local);
  assert.deepEqual(usable, ["192.0.2.11", "192.0.2.12", "2001:db8:1::13", "2001:db8:1::11"]);
});

Deno.test("parseAddressShow rejects output of the wrong shape with IpJsonError", () => {
  for (
    const bad of [
      "not json",
      '{"ifname":"eth0"}',
      "[1]",
      '[{"ifindex":2}]',
      '[{"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"x","prefixlen":24}]}]',
      '[{"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.1"}]}]',
    ]
  ) {
    assert.throws(
      () => parseAddressShow(bad),
      (error: unknown) => error instanceof IpJsonError && error.name === "IpJsonError",
      bad,
    );
  }
  assert.deepEqual(parseAddressShow(""), []);
  // Other families (e.g. an "ipx"-style entry) are left out, not rejected.
  assert.deepEqual(
    parseAddressShow('[{"ifindex":2,"ifname":"x","addr_info":[{"family":"mpls"}]}]')[0]?.addresses,
    [],
  );
});

Deno.test("parseDefaultRoutes: plain and multipath routes; defaultRouteInterfaces once each", () => {
  const v4 = parseDefaultRoutes(
    '[{"dst":"default","metric":5,"flags":[],"nexthops":[' +
      '{"gateway":"192.0.2.2","dev":"eth0","weight":1,"flags":[]},' +
      '{"gateway":"198.51.100.3","dev":"eth1","weight":1,"flags":[]}]}]',
    "IPv4",
  );
  const v6 = parseDefaultRoutes(
    '[{"dst":"default","gateway":"2001:db8:1::1","dev":"eth0","metric":1024,"flags":[]},' +
      '{"dst":"default","dev":"wg0","flags":[]}]',
    "IPv6",
  );
  assert.deepEqual(v4, [
    { family: "IPv4", interfaceName: "eth0", gateway: "192.0.2.2" },
    { family: "IPv4", interfaceName: "eth1", gateway: "198.51.100.3" },
  ]);
  assert.deepEqual(v6, [
    { family: "IPv6", interfaceName: "eth0", gateway: "2001:db8:1::1" },
    { family: "IPv6", interfaceName: "wg0" },
  ]);
  assert.deepEqual(defaultRouteInterfaces({ links: [], defaultRoutes: [...v4, ...v6] }), [
    "eth0",
    "eth1",
    "wg0",
  ]);
  assert.deepEqual(parseDefaultRoutes("[]\n", "IPv6"), []);
});
