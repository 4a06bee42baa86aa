import assert from "node:assert/strict";
import { assertRoot, rootTestOptions } from "../system.ts";
import { exec } from "./exec.ts";
import { createLan } from "./lan.ts";
import {
  addHostAddress,
  parsePingSummary,
  ping,
  removeHostAddress,
  startTcpResponder,
  tcpRequest,
  waitForPing,
} from "./reach.ts";

Deno.test("parsePingSummary reads ping's closing line", () => {
  assert.deepEqual(
    parsePingSummary(
      "--- 192.0.2.200 ping statistics ---\n3 packets transmitted, 2 received, 33% packet loss",
    ),
    { transmitted: 3, received: 2 },
  );
  assert.deepEqual(parsePingSummary("ping: connect: Network is unreachable"), {
    transmitted: 0,
    received: 0,
  });
});

Deno.test({
  name: "addresses by hand on kube-lb0, pinged and served over TCP from the client",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    const lan = await createLan({
      nodes: ["node-a"],
      ipv4Subnet: "192.0.2.0/24",
      ipv6Subnet: "2001:db8:1::/64",
    });
    try {
      const node = lan.node("node-a");
      await addHostAddress(node.netns, "kube-lb0", "192.0.2.200");
      await addHostAddress(node.netns, "kube-lb0", "2001:db8:5::200");
      const shown = await exec(node.netns, "ip", "-brief", "address", "show", "dev", "kube-lb0");
      assert.match(shown, /192\.0\.2\.200\/32/);
      assert.match(shown, /2001:db8:5::200\/128/);

      // The client is on the LAN: node-a answers ARP for the address on its kube-lb0.
      await waitForPing(lan.client.netns, "192.0.2.200", 5_000);
      const answered = await ping(lan.client.netns, "192.0.2.200", { count: 2 });
      assert.equal(answered.received, 2, answered.output);

      const responder = await startTcpResponder(node.netns, 8080, "node-a");
      try {
        assert.equal(await tcpRequest(lan.client.netns, "192.0.2.200", 8080), "node-a");
        assert.equal(await tcpRequest(lan.client.netns, node.ipv6, 8080), "node-a");
        await assert.rejects(tcpRequest(lan.client.netns, node.ipv4, 8081), /failed/);
      } finally {
        await responder.stop();
      }

      await removeHostAddress(node.netns, "kube-lb0", "192.0.2.200");
      await removeHostAddress(node.netns, "kube-lb0", "2001:db8:5::200");
      const after = await exec(node.netns, "ip", "-brief", "address", "show", "dev", "kube-lb0");
      assert.doesNotMatch(after, /192\.0\.2\.200|2001:db8:5::200/);
      const lost = await ping(lan.client.netns, "192.0.2.200", { count: 1, deadlineSeconds: 1 });
      assert.equal(lost.received, 0);
    } finally {
      await lan.destroy();
    }
  },
});
