// The module and cluster configuration model, shared by the agent and the console. Everything
// exported here is pure (strings and objects in, strings and objects out); reading and writing
// `.safe` files and module folders is in ./package-io.ts, which needs Node.

export { type LoadedCluster, loadClusterXml } from './cluster-config.ts';
export { clusterSchema } from './cluster-schema.ts';
export { type DurationResult, parseDuration, type TimeUnit, timeUnits } from './duration.ts';
export {
  addChecker,
  addProcess,
  addReplicatedDir,
  EditError,
  type ElementSelector,
  type ElementStep,
  findElement,
  insertElement,
  type NewChecker,
  type NewElement,
  type NewProcess,
  removeAttribute,
  removeChecker,
  removeElement,
  removeProcess,
  removeReplicatedDir,
  removeVar,
  setAttribute,
  setMacro,
  setVar,
} from './edit.ts';
export { effectiveJson, formatRule, renderEffectiveXml } from './effective.ts';
export { isLuaBlock, parseLegacyRules } from './failover-rules.ts';
export type { Environment } from './macros.ts';
export type * from './model.ts';
export {
  buildPackage,
  defaultPackageLimits,
  type ModulePackage,
  type PackageEntry,
  PackageError,
  type PackageLimits,
  packageFiles,
  packageUserconfig,
  withUserconfig,
} from './module-package.ts';
export { farmPortOf, heartbeatPortOf, moduleIdMax, replicationPortOf } from './ports.ts';
export { type ConfigProblem, formatProblem, hasErrors, type ProblemCode, type Severity } from './problems.ts';
export type { AttributeSpec, ElementSpec, ValueType } from './schema.ts';
export { type LoadedUserconfig, type LoadUserconfigOptions, loadUserconfig } from './userconfig.ts';
export { userconfigSchema } from './userconfig-schema.ts';
export { type ClusterModule, validateClusterModules } from './validate-cluster.ts';
export { moduleResources, reservedVariableNames } from './validate-module.ts';
export { parseXml, serializeXml, type XmlDocument, type XmlElement } from './xml.ts';
