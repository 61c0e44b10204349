import { open, stat, type FileHandle } from "node:fs/promises";
import { InputError } from "../errors.ts";

/** Writes every byte; a single write() may legally write fewer bytes than asked. */
export async function writeFully(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.byteLength - offset);
    offset += bytesWritten;
  }
}

/** Makes renames and new files in `dir` durable; a no-op where directories cannot be opened (Windows). */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EPERM" && code !== "EINVAL" && code !== "EBADF") throw error;
  } finally {
    await handle?.close();
  }
}

/** Size of an input file; a missing file is an InputError that names it. */
export async function inputFileSize(path: string): Promise<number> {
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new InputError("is a directory, not a file", { file: path });
    return info.size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new InputError("file does not exist", { file: path }, { cause: error });
    }
    throw error;
  }
}

/** Standard input, as sources name it (`-` on the command line). */
export const STDIN = "/dev/stdin";

/** A pipe, a FIFO, a terminal or a socket: read once, front to back, with no size to know in advance. */
export async function isStreamPath(path: string): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  return info !== undefined && (info.isFIFO() || info.isCharacterDevice() || info.isSocket());
}

/** Size of a non-empty input file (a stream cannot be told empty in advance: Infinity). */
export async function nonEmptyInputFile(path: string): Promise<number> {
  if (await isStreamPath(path)) return Number.POSITIVE_INFINITY;
  const size = await inputFileSize(path);
  if (size === 0) throw new InputError("file is empty", { file: path });
  return size;
}
