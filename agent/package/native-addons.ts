// Native addons the agent bundles load at run time. esbuild cannot inline a compiled `.node`
// file, so each addon listed here stays external to hakitd.cjs / hakit.cjs and is copied whole
// from node_modules/<name>/ into the package, next to the bundles
// (/opt/hakit/private/bin/node_modules/<name>/), where `require('<name>')` finds it.
//
// None today: the agent is pure JavaScript. The replication issue adds `@cocalc/fuse-native`
// here (with its own dependencies, if any, listed as well: nothing is copied implicitly). Any
// other package a bundle leaves external makes the build fail, so a missing entry is caught at
// packaging time rather than on a node.

export interface NativeAddon {
  /** The npm package name, as the agent code imports it. */
  packageName: string;
  /** Why the agent needs it (shown in the build log). */
  reason: string;
}

export const nativeAddons: readonly NativeAddon[] = [];
