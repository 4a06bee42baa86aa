/**
 * A real Kubernetes control plane on loopback (etcd + kube-apiserver), the way envtest runs one:
 * RBAC authorization, token authentication (a static admin token; service accounts get real
 * tokens from the TokenRequest API), our CRDs installed from `deploy/crds/`.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ControlPlaneBinaries, ensureBinaries } from "./binaries.ts";
import { applyManifestFiles, waitForCrdsEstablished } from "./manifests.ts";
import { freePort, waitFor } from "../wait.ts";
import { pathExists as exists } from "../setup_command.ts";

/** Options for {@linkcode ControlPlane.start}. */
export interface ControlPlaneOptions {
  /** Where the admin kubeconfig is written (`<dir>/kubeconfig`). Default: a temp dir. */
  readonly dir?: string;
  /** Prebuilt binaries; found or built with {@linkcode ensureBinaries} when absent. */
  readonly binaries?: ControlPlaneBinaries;
  /** Progress lines (binary builds, start-up). */
  readonly log?: (line: string) => void;
  /** Files or folders (`*.yaml`) applied once the API server is ready. Default: namespace, CRDs, RBAC. */
  readonly manifestDirs?: readonly string[];
}

/** Raised when the control plane cannot start; the message carries the tail of the server log. */
export class ControlPlaneError extends Error {
  override name = "ControlPlaneError";
}

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const READY_TIMEOUT_MS = 90_000;
/** Applied once the API server is ready: our namespace, CRDs and RBAC. */
const DEFAULT_MANIFESTS = ["deploy/namespace.yaml", "deploy/crds", "deploy/rbac"];
const STOP_GRACE_MS = 5_000;
/** Cluster IP ranges for Services; no traffic ever goes to them (there is no kube-proxy). */
const SERVICE_CLUSTER_IP_RANGES = "10.96.0.0/16,fd00:10:96::/108";

/** A running etcd + kube-apiserver pair. Stop it with {@linkcode ControlPlane.stop}. */
export class ControlPlane {
  #apiserver: ManagedProcess | undefined;
  #etcd: ManagedProcess | undefined;
  #stopped = false;

  private constructor(
    /** Temp dir with etcd data, certificates, keys, tokens and logs; removed on stop. */
    readonly stateDir: string,
    /** Where the admin kubeconfig lives. */
    readonly kubeconfigPath: string,
    /** `https://127.0.0.1:<port>` */
    readonly server: string,
    readonly adminToken: string,
    readonly binaries: ControlPlaneBinaries,
    readonly ports: { readonly apiserver: number; readonly etcd: number; readonly peer: number },
    readonly log: (line: string) => void,
    readonly ownsKubeconfigDir: boolean,
  ) {}

  /**
   * Starts etcd and kube-apiserver, waits for readiness, applies the CRDs and writes the
   * admin kubeconfig.
   *
   * @example
   * ```ts
   * const cp = await ControlPlane.start({ log: console.error });
   * console.log(cp.kubeconfigPath);
   * await cp.stop();
   * ```
   */
  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const log = opts.log ?? (() => {});
    const binaries = opts.binaries ?? await ensureBinaries({ log });
    const stateDir = await Deno.makeTempDir({ prefix: "purelb-controlplane-" });
    let kubeconfigDir = opts.dir;
    let ownsKubeconfigDir = false;
    if (kubeconfigDir === undefined) {
      kubeconfigDir = stateDir;
    } else {
      ownsKubeconfigDir = !(await exists(kubeconfigDir));
      await Deno.mkdir(kubeconfigDir, { recursive: true });
    }
    const ports = { apiserver: freePort(), etcd: freePort(), peer: freePort() };
    const cp = new ControlPlane(
      stateDir,
      join(kubeconfigDir, "kubeconfig"),
      `https://127.0.0.1:${ports.apiserver}`,
      crypto.randomUUID(),
      binaries,
      ports,
      log,
      ownsKubeconfigDir,
    );
    try {
      await cp.#prepareFiles();
      await cp.#startEtcd();
      await cp.startApiServer();
      await cp.#writeKubeconfig();
      const dirs = opts.manifestDirs ?? DEFAULT_MANIFESTS.map((p) => join(REPO_ROOT, p));
      const applied = await applyManifestFiles(binaries.kubectl, cp.kubeconfigPath, dirs);
      await waitForCrdsEstablished(binaries.kubectl, cp.kubeconfigPath, applied, 30);
      return cp;
    } catch (error) {
      await cp.stop();
      throw error;
    }
  }

  /** PEM of the certificate authority that signed the API server's serving certificate. */
  get caFile(): string {
    return join(this.stateDir, "certs", "apiserver.crt");
  }

  /** Starts (or restarts, after {@linkcode stopApiServer}) kube-apiserver on the same port. */
  async startApiServer(): Promise<void> {
    if (this.#apiserver) throw new ControlPlaneError("kube-apiserver is already running");
    const args = [
      `--etcd-servers=http://127.0.0.1:${this.ports.etcd}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${this.ports.apiserver}`,
      `--cert-dir=${join(this.stateDir, "certs")}`,
      "--authorization-mode=RBAC",
      `--token-auth-file=${join(this.stateDir, "tokens.csv")}`,
      `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
      `--service-account-key-file=${join(this.stateDir, "sa.pub")}`,
      `--service-account-signing-key-file=${join(this.stateDir, "sa.key")}`,
      `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGES}`,
      "--endpoint-reconciler-type=none",
      "--allow-privileged=true",
      "--profiling=false",
      "--enable-priority-and-fairness=false",
      "--v=1",
    ];
    const apiserver = ManagedProcess.spawn(
      this.binaries.kubeApiserver,
      args,
      join(this.stateDir, "apiserver.log"),
    );
    this.#apiserver = apiserver;
    await this.#waitReady(apiserver);
  }

  /** Stops kube-apiserver (etcd keeps the data), to test clients across an outage. */
  async stopApiServer(): Promise<void> {
    const process = this.#apiserver;
    this.#apiserver = undefined;
    await process?.stop(STOP_GRACE_MS);
  }

  /**
   * Compacts etcd's history up to now, so that any watch resuming from an older resource
   * version gets 410 Gone and must relist (what happens in real clusters after a long outage).
   */
  async compactEtcd(): Promise<void> {
    const etcd = `http://127.0.0.1:${this.ports.etcd}`;
    const put = await fetch(`${etcd}/v3/kv/put`, {
      method: "POST",
      body: JSON.stringify({ key: btoa("/purelb-test/compaction"), value: btoa(Date.now() + "") }),
    });
    const header: unknown = await put.json();
    const revision = (header as { header?: { revision?: string } }).header?.revision;
    if (!put.ok || !revision) {
      throw new ControlPlaneError(`etcd put failed: ${JSON.stringify(header)}`);
    }
    const compact = await fetch(`${etcd}/v3/kv/compaction`, {
      method: "POST",
      body: JSON.stringify({ revision, physical: true }),
    });
    const text = await compact.text();
    if (!compact.ok) throw new ControlPlaneError(`etcd compaction failed: ${text}`);
  }

  /** Stops both processes and removes every file this control plane created. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.stopApiServer();
    const etcd = this.#etcd;
    this.#etcd = undefined;
    await etcd?.stop(STOP_GRACE_MS);
    await Deno.remove(this.stateDir, { recursive: true }).catch(() => {});
    if (!this.kubeconfigPath.startsWith(this.stateDir + "/")) {
      await Deno.remove(this.kubeconfigPath).catch(() => {});
      if (this.ownsKubeconfigDir) {
        await Deno.remove(dirname(this.kubeconfigPath)).catch(() => {});
      }
    }
  }

  /**
   * Kills both processes and removes the state dir synchronously: for `unload` handlers and
   * signal paths where nothing can be awaited.
   */
  killSync(): void {
    this.#stopped = true;
    this.#apiserver?.killNow();
    this.#etcd?.killNow();
    try {
      Deno.removeSync(this.stateDir, { recursive: true });
    } catch { /* already gone */ }
  }

  async #prepareFiles(): Promise<void> {
    await Deno.mkdir(join(this.stateDir, "certs"), { recursive: true });
    await Deno.writeTextFile(
      join(this.stateDir, "tokens.csv"),
      `${this.adminToken},admin,admin-uid,"system:masters"\n`,
    );
    const { privatePem, publicPem } = await newSigningKeyPair();
    await Deno.writeTextFile(join(this.stateDir, "sa.key"), privatePem, { mode: 0o600 });
    await Deno.writeTextFile(join(this.stateDir, "sa.pub"), publicPem);
  }

  async #startEtcd(): Promise<void> {
    const client = `http://127.0.0.1:${this.ports.etcd}`;
    const peer = `http://127.0.0.1:${this.ports.peer}`;
    const etcd = ManagedProcess.spawn(this.binaries.etcd, [
      "--name=default",
      `--data-dir=${join(this.stateDir, "etcd")}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=default=${peer}`,
      "--unsafe-no-fsync",
      "--log-level=warn",
    ], join(this.stateDir, "etcd.log"));
    this.#etcd = etcd;
    await Promise.race([
      etcd.exitedEarly("etcd"),
      waitFor(
        async () => {
          const response = await fetch(`${client}/health`).catch(() => undefined);
          if (!response) return false;
          await response.body?.cancel();
          return response.ok;
        },
        READY_TIMEOUT_MS,
        "etcd to answer /health",
      ),
    ]);
  }

  async #waitReady(apiserver: ManagedProcess): Promise<void> {
    let client: Deno.HttpClient | undefined;
    try {
      await Promise.race([
        apiserver.exitedEarly("kube-apiserver"),
        waitFor(
          async () => {
            if (!client) {
              const ca = await Deno.readTextFile(this.caFile).catch(() => undefined);
              if (!ca) return false;
              client = Deno.createHttpClient({ caCerts: [ca] });
            }
            const response = await fetch(`${this.server}/readyz`, {
              client,
              headers: { authorization: `Bearer ${this.adminToken}` },
            }).catch(() => undefined);
            if (!response) return false;
            await response.body?.cancel();
            return response.ok;
          },
          READY_TIMEOUT_MS,
          "kube-apiserver /readyz",
        ),
      ]);
    } catch (error) {
      const logTail = await apiserver.logTail();
      await this.stopApiServer();
      throw new ControlPlaneError(`${errorMessage(error)}\n--- kube-apiserver log ---\n${logTail}`);
    } finally {
      client?.close();
    }
  }

  async #writeKubeconfig(): Promise<void> {
    const ca = await Deno.readTextFile(this.caFile);
    const kubeconfig = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "purelb-test",
        cluster: { server: this.server, "certificate-authority-data": btoa(ca) },
      }],
      users: [{ name: "admin", user: { token: this.adminToken } }],
      contexts: [{
        name: "purelb-test",
        context: { cluster: "purelb-test", user: "admin", namespace: "default" },
      }],
      "current-context": "purelb-test",
    };
    // JSON is valid YAML; kubectl and client-node read it as a kubeconfig.
    await Deno.writeTextFile(this.kubeconfigPath, JSON.stringify(kubeconfig, null, 2) + "\n", {
      mode: 0o600,
    });
  }
}

/** A child process whose output goes to a log file. */
class ManagedProcess {
  #exit: Deno.CommandStatus | undefined;

  private constructor(
    readonly child: Deno.ChildProcess,
    readonly logPath: string,
    readonly finished: Promise<void>,
  ) {
    child.status.then((status) => this.#exit = status);
  }

  static spawn(program: string, args: readonly string[], logPath: string): ManagedProcess {
    const child = new Deno.Command(program, {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const file = Deno.openSync(logPath, { create: true, append: true });
    const writer = file.writable.getWriter();
    const copy = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) await writer.write(chunk);
    };
    const finished = Promise.all([copy(child.stdout), copy(child.stderr)])
      .then(() => {}, () => {})
      .finally(() => writer.close().catch(() => {}));
    return new ManagedProcess(child, logPath, finished);
  }

  /** Rejects when the process exits; for racing against a readiness wait. */
  async exitedEarly(what: string): Promise<never> {
    const status = await this.child.status;
    throw new ControlPlaneError(`${what} exited early with code ${status.code}`);
  }

  async stop(graceMs: number): Promise<void> {
    if (!this.#exit) {
      try {
        this.child.kill("SIGTERM");
      } catch { /* already exited */ }
      const timer = setTimeout(() => {
        try {
          this.child.kill("SIGKILL");
        } catch { /* already exited */ }
      }, graceMs);
      await this.child.status;
      clearTimeout(timer);
    }
    await this.finished;
  }

  killNow(): void {
    try {
      this.child.kill("SIGKILL");
    } catch { /* already exited */ }
  }

  /** The last lines of the log; waits for the output to be flushed if the process has exited. */
  async logTail(lines = 40): Promise<string> {
    if (this.#exit) await this.finished;
    const text = await Deno.readTextFile(this.logPath).catch(() => "");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  }
}

/** A fresh ECDSA P-256 key pair in PEM (PKCS#8 private, SPKI public) for service account tokens. */
async function newSigningKeyPair(): Promise<{ privatePem: string; publicPem: string }> {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const pem = (label: string, der: ArrayBuffer) => {
    const base64 = btoa(String.fromCharCode(...new Uint8Array(der)));
    const lines = base64.match(/.{1,64}/g) ?? [];
    return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
  };
  return {
    privatePem: pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", pair.privateKey)),
    publicPem: pem("PUBLIC KEY", await crypto.subtle.exportKey("spki", pair.publicKey)),
  };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
