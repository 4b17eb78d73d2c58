// One single executable per target: the target's Node from the npm registry, stripped, with the bundle's SEA blob injected by postject.
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE, DIST, ROOT, VERSIONS, daemonV8Flags, debianSysroot, log, npmPackage, run } from './lib.mjs';

const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** The target's official Node binary (unpacked from the npm registry's node-linux-* package). */
export function nodeBinary(targetName) {
  const { node } = VERSIONS.targets[targetName];
  return join(npmPackage(node.package, node.version), 'bin', 'node');
}

/** argv prefix that runs a target's ELF here: nothing on x64, qemu-user with the Debian sysroot on ARM. */
export function emulator(targetName) {
  const target = VERSIONS.targets[targetName];
  if (!target.qemu) return [];
  return [target.qemu, '-L', debianSysroot(targetName)];
}

/**
 * A Node able to write the target's blob: the blob must come from exactly the target's Node version, and a
 * 32-bit one must be made by that target's Node itself (an x64-made blob crashed the armv7 one). Bases of the same
 * version share one blob maker, the x64 one, run natively.
 */
function blobMaker(targetName) {
  const { node, nodeArch } = VERSIONS.targets[targetName];
  const x64 = VERSIONS.targets.x64.node.version === node.version && nodeArch !== 'arm';
  return x64 ? [nodeBinary('x64')] : [...emulator(targetName), nodeBinary(targetName)];
}

export async function buildExecutable(targetName, bundle) {
  if (VERSIONS.targets[targetName].node.debian) throw new Error(`${targetName} runs Debian's nodejs: no single executable (runtime.mjs)`);
  const work = join(CACHE, 'sea', targetName);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const blob = join(work, 'sea.blob');
  const config = {
    main: bundle.file,
    output: blob,
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: false,
    ...(bundle.hasAssets ? { assets: bundle.assets } : {}),
  };
  // SEA `execArgv` exists from Node 22, the base of every single-executable target.
  if (Number(VERSIONS.targets[targetName].node.version.split('.')[0]) < 22) throw new Error(`${targetName}: a single executable needs Node 22 or later`);
  config.execArgv = daemonV8Flags();
  writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config, null, 2));
  const [cmd, ...pre] = blobMaker(targetName);
  log(`SEA blob for ${targetName}`);
  run(cmd, [...pre, '--experimental-sea-config', join(work, 'sea-config.json')], { cwd: work });

  mkdirSync(DIST, { recursive: true });
  const out = join(DIST, `ferry-linux-${targetName}`);
  copyFileSync(nodeBinary(targetName), out);
  chmodSync(out, 0o755);
  const before = statSync(out).size;
  run('strip', ['--strip-all', out]);
  log(`strip ${targetName}: ${(before / 1e6).toFixed(1)} MB → ${(statSync(out).size / 1e6).toFixed(1)} MB`);
  const postject = join(ROOT, 'node_modules', 'postject', 'dist', 'cli.js');
  if (!existsSync(postject)) throw new Error('postject is missing: run npm ci');
  run(process.execPath, [postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]);
  return out;
}
