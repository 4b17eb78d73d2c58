// The esbuild bundle of one target: daemon, CLI and web assets in one CommonJS file, native addons replaced by loaders of the embedded copies.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CACHE, PACKAGE, ROOT, VERSIONS, fill, isDebianRuntime, log, npmPackage, sha256File } from './lib.mjs';

const NATIVE_LOADER = join(ROOT, 'src', 'util', 'native-addon.ts');

/** Native addons of the dependencies package.json names, with each target's prebuild fetched from the npm registry. */
export function nativeAddons(targetName) {
  const target = VERSIONS.targets[targetName];
  const deps = PACKAGE.dependencies ?? {};
  const addons = [];
  for (const [name, spec] of Object.entries(VERSIONS.addons)) {
    if (!(spec.package in deps)) continue;
    const installed = JSON.parse(readFileSync(join(ROOT, 'node_modules', spec.package, 'package.json'), 'utf8'));
    const prebuild = fill(spec.prebuild, target);
    const version = installed.optionalDependencies?.[prebuild];
    if (!version) throw new Error(`${spec.package}@${installed.version} lists no prebuild ${prebuild}`);
    const dir = npmPackage(prebuild, version);
    const file = join(dir, fill(spec.file, target));
    if (!existsSync(file)) throw new Error(`${prebuild}@${version} has no ${relative(dir, file)}`);
    addons.push({ name, package: spec.package, prebuild, version, file, sha256: sha256File(file) });
  }
  return addons;
}

/** esbuild plugin: the addon loaders of lmdb and @node-rs/argon2 become calls into src/util/native-addon.ts. */
function embeddedAddonsPlugin(addons) {
  const names = new Set(addons.map((a) => a.name));
  const stub = (name) =>
    names.has(name)
      ? `module.exports = require(${JSON.stringify(NATIVE_LOADER)}).loadEmbeddedAddon(${JSON.stringify(name)});`
      : `throw new Error('native addon ${name} is not part of this build');`;
  return {
    name: 'ferry-embedded-addons',
    setup(b) {
      // lmdb's ES module source misreads keys once scope-hoisted by esbuild (ordered-binary's readKey loops until
      // "Invalid array length"); its own CommonJS build, which rollup made for require(), works.
      b.onResolve({ filter: /^lmdb$/ }, () => ({ path: join(ROOT, 'node_modules', 'lmdb', 'dist', 'index.cjs') }));
      b.onResolve({ filter: /^node-gyp-build-optional-packages$/ }, () => ({ path: 'lmdb', namespace: 'ferry-gyp' }));
      b.onLoad({ filter: /.*/, namespace: 'ferry-gyp' }, () => ({
        contents: `const load = () => { ${stub('lmdb').replace('module.exports =', 'return')} };\nmodule.exports = load;`,
        resolveDir: ROOT,
        loader: 'js',
      }));
      b.onResolve({ filter: /^@node-rs\/argon2-/ }, () => ({ path: 'argon2', namespace: 'ferry-native' }));
      b.onResolve({ filter: /\.node$/ }, (args) => {
        if (!/@node-rs[\\/]argon2/.test(args.importer)) throw new Error(`unexpected native addon ${args.path} from ${args.importer}`);
        return { path: 'argon2', namespace: 'ferry-native' };
      });
      b.onLoad({ filter: /.*/, namespace: 'ferry-native' }, (args) => ({ contents: stub(args.path), resolveDir: ROOT, loader: 'js' }));
      // msgpackr's optional accelerator: left out, msgpackr falls back to its pure-JS decoder.
      b.onResolve({ filter: /^msgpackr-extract$/ }, () => ({ path: 'msgpackr-extract', namespace: 'ferry-absent' }));
      b.onLoad({ filter: /.*/, namespace: 'ferry-absent' }, () => ({ contents: `throw new Error('not bundled');`, loader: 'js' }));
    },
  };
}

/** The admin page's static files as `make build` writes them (build/web/, see src/web/static.ts): SEA asset name → file. */
export function webAssets() {
  const dir = join(ROOT, 'build', 'web');
  const files = {};
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isFile() && !name.endsWith('.map')) files[`web/${name}`] = full;
  }
  return files;
}

const COMMON = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  legalComments: 'none',
  logLevel: 'warning',
  // lmdb uses import.meta.url; in CommonJS it is this file's URL.
  define: { 'import.meta.url': '__ferry_import_meta_url' },
  banner: { js: `var __ferry_import_meta_url = require('node:url').pathToFileURL(__filename).href;` },
};

/** Where a Debian-runtime bundle's addons are, relative to the bundle file. */
export const ADDON_DIR = 'addons';

/** Bundles everything for one target; returns { file, addons, assets } for the SEA step. */
export async function bundleTarget(targetName, { debug = false } = {}) {
  const target = VERSIONS.targets[targetName];
  const nodeTarget = `node${target.node.version.split('.').slice(0, 2).join('.')}`;
  const addons = nativeAddons(targetName);
  // A single executable reads its addons and the page as SEA assets. A bundle run by Debian's node (no SEA) loads
  // its addons from files beside it (ADDON_DIR, which the package trees hold) and carries the page inside.
  const debian = isDebianRuntime(targetName);
  const hasAssets = !debug && !debian;
  const manifest = {
    target: `linux-${targetName}`,
    arch: target.nodeArch,
    addons: Object.fromEntries(
      addons.map((a) => [
        a.name,
        hasAssets
          ? { sha256: a.sha256, asset: `native/${a.name}.node` }
          : debian
            ? { sha256: a.sha256, file: `${ADDON_DIR}/${a.name}.node` }
            : { sha256: a.sha256, base64: readFileSync(a.file).toString('base64') },
      ]),
    ),
  };
  const outDir = join(CACHE, debug ? 'bundle-debug' : 'bundle', targetName);
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, 'ferry.cjs');
  log(`esbuild bundle for ${targetName} (${nodeTarget}; addons ${addons.map((a) => `${a.prebuild}@${a.version}`).join(', ')})`);
  await build({
    ...COMMON,
    entryPoints: [join(ROOT, 'src', 'main-sea.ts')],
    outfile: file,
    target: nodeTarget,
    minifySyntax: !debug,
    minifyWhitespace: !debug,
    sourcemap: debug ? 'inline' : false,
    plugins: [embeddedAddonsPlugin(addons)],
    define: {
      ...COMMON.define,
      FERRY_NATIVE_MANIFEST: JSON.stringify(manifest),
      // Without sea.getAsset, src/main-sea.ts serves the web files from these copies.
      FERRY_EMBEDDED_ASSETS: hasAssets
        ? 'undefined'
        : JSON.stringify(Object.fromEntries(Object.entries(webAssets()).map(([k, f]) => [k, readFileSync(f).toString('base64')]))),
    },
  });
  const assets = hasAssets ? { ...Object.fromEntries(addons.map((a) => [`native/${a.name}.node`, a.file])), ...webAssets() } : {};
  if (!Object.keys(webAssets()).length) log('warning: build/web/ is empty: the admin page is not in this bundle (run make build)');
  return { file, addons, assets, hasAssets };
}
