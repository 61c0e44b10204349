/**
 * A small seccomp filter, in classic BPF, handed to bwrap with `--seccomp`. The namespaces and rlimits
 * are the boundary; the filter narrows the kernel surface behind it: no new user namespaces (when
 * running as root, bwrap cannot make one for the sandbox, so `--disable-userns` is not available),
 * no joining namespaces, no ptrace or reading another process's memory or descriptors, no shared memory
 * outside the capped tmpfs (memfd, SysV shm, shared anonymous mmap), keyrings, bpf, perf events, userfaultfd or io_uring.
 * Only x86-64 and arm64 are described; elsewhere the sandbox runs without it.
 */

interface Instruction {
  readonly code: number;
  readonly k: number;
  /** Labels (or 0 for the next instruction) for conditional jumps. */
  readonly jt?: string | 0;
  readonly jf?: string | 0;
  readonly label?: string;
}

const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;

const RET_ALLOW = 0x7fff0000;
const retErrno = (errno: number) => 0x00050000 | errno;
const EPERM = 1;
const ENOSYS = 38;
const CLONE_NEWUSER = 0x10000000;
const MAP_SHARED = 0x01;
const MAP_ANONYMOUS = 0x20;

// Offsets in struct seccomp_data: nr (u32), arch (u32), instruction_pointer (u64), args (u64 x 6).
const NR = 0;
const ARCH = 4;
const ARG0_LOW = 16;

interface ArchTable {
  readonly audit: number;
  /** Syscall numbers at or above this belong to another ABI (x32) and are refused. */
  readonly foreignAbove?: number;
  readonly withFlags: readonly number[];
  readonly denied: readonly number[];
  readonly clone3: number;
  /** mmap: refused for shared anonymous memory, which no rlimit or disk cap counts. */
  readonly mmap: number;
}

const TABLES: Partial<Record<NodeJS.Architecture, ArchTable>> = {
  x64: {
    audit: 0xc000003e,
    foreignAbove: 0x40000000,
    // clone, unshare: refused only when they ask for a user namespace.
    withFlags: [56, 272],
    // setns, ptrace, keyctl, add_key, request_key, bpf, perf_event_open, userfaultfd, io_uring x3,
    // process_vm_readv/writev and pidfd_getfd (another process's memory or descriptors: the checker's),
    // memfd_create and shmget (memory outside RLIMIT_DATA and the tmpfs caps)
    denied: [308, 101, 250, 248, 249, 321, 298, 323, 425, 426, 427, 310, 311, 438, 319, 29],
    clone3: 435,
    mmap: 9,
  },
  arm64: {
    audit: 0xc00000b7,
    withFlags: [220, 97],
    denied: [268, 117, 219, 217, 218, 280, 241, 282, 425, 426, 427, 270, 271, 438, 279, 194],
    clone3: 435,
    mmap: 222,
  },
};

/** The filter as bwrap reads it (an array of struct sock_filter), or undefined on other architectures. */
export function seccompFilter(arch: NodeJS.Architecture = process.arch): Buffer | undefined {
  const table = TABLES[arch];
  if (!table) return undefined;
  const program: Instruction[] = [
    { code: LD_W_ABS, k: ARCH },
    { code: JEQ_K, k: table.audit, jt: 0, jf: "deny" },
    { code: LD_W_ABS, k: NR },
  ];
  if (table.foreignAbove !== undefined) program.push({ code: JGE_K, k: table.foreignAbove, jt: "deny", jf: 0 });
  for (const nr of table.withFlags) program.push({ code: JEQ_K, k: nr, jt: "flags", jf: 0 });
  for (const nr of table.denied) program.push({ code: JEQ_K, k: nr, jt: "deny", jf: 0 });
  // glibc falls back to clone() when clone3 is missing; clone3 passes its flags in memory the filter cannot read.
  program.push({ code: JEQ_K, k: table.clone3, jt: "nosys", jf: 0 });
  program.push({ code: JEQ_K, k: table.mmap, jt: "mmap", jf: 0 });
  program.push({ code: RET_K, k: RET_ALLOW });
  // mmap(addr, len, prot, flags, ...): MAP_SHARED (or MAP_SHARED_VALIDATE) with MAP_ANONYMOUS is refused.
  program.push({ code: LD_W_ABS, k: ARG0_LOW + 3 * 8, label: "mmap" });
  program.push({ code: JSET_K, k: MAP_ANONYMOUS, jt: 0, jf: "allow" });
  program.push({ code: JSET_K, k: MAP_SHARED, jt: "deny", jf: "allow" });
  program.push({ code: RET_K, k: RET_ALLOW, label: "allow" });
  program.push({ code: LD_W_ABS, k: ARG0_LOW, label: "flags" });
  program.push({ code: JSET_K, k: CLONE_NEWUSER, jt: "deny", jf: 0 });
  program.push({ code: RET_K, k: RET_ALLOW });
  program.push({ code: RET_K, k: retErrno(EPERM), label: "deny" });
  program.push({ code: RET_K, k: retErrno(ENOSYS), label: "nosys" });
  return assemble(program);
}

function assemble(program: readonly Instruction[]): Buffer {
  const labels = new Map<string, number>();
  program.forEach((instruction, index) => instruction.label && labels.set(instruction.label, index));
  const offset = (from: number, target: string | 0 | undefined): number => {
    if (target === undefined || target === 0) return 0;
    const to = labels.get(target);
    if (to === undefined || to <= from || to - from - 1 > 255) throw new Error(`seccomp: bad jump to ${target}`);
    return to - from - 1;
  };
  const out = Buffer.alloc(program.length * 8);
  program.forEach((instruction, index) => {
    out.writeUInt16LE(instruction.code, index * 8);
    out.writeUInt8(offset(index, instruction.jt), index * 8 + 2);
    out.writeUInt8(offset(index, instruction.jf), index * 8 + 3);
    out.writeUInt32LE(instruction.k >>> 0, index * 8 + 4);
  });
  return out;
}
