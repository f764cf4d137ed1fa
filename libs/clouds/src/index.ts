export {
  CloudNodeStates,
  type BaseCloud,
  type CloudNode,
  type CloudNodeState,
  type Contextualization,
  type NodeKind,
  type NodeSpec,
} from './types.js';
export {
  IAAS_NODE_PORTS,
  NODE_ENVIRONMENT_VARIABLES,
  nodeEnvironment,
  parseNodeEnvironment,
  type NodeEnvironment,
  type PortRange,
} from './node-environment.js';
export {
  LocalCloud,
  type HostModeOptions,
  type LocalCloudOptions,
  type LocalCommand,
} from './local/local-cloud.js';
export { bridgeNamespace, namespaceOfAddress, ownerTag } from './host/address-plan.js';
export {
  claimPlatformAddress,
  releasePlatformAddress,
  type PlatformAddress,
} from './host/platform-address.js';
export { type NatsEndpoint } from './host/app-networks.js';
export { WORKLOAD_USER, workloadUser, type WorkloadUser } from './local/workload-user.js';
export {
  Provisioner,
  type MissingNodePolicy,
  type NodeCertifier,
  type NodeIdentitySource,
  type ProvisionerOptions,
  type ProvisionPolicy,
  type ReconcileReport,
} from './provisioner/provisioner.js';
export { evolveNode, nodeEvents, type NodeEvent, type NodeRecord } from './provisioner/node-events.js';
export { Ec2Cloud, Ec2Tags, type Ec2CloudOptions, type Ec2Credentials } from './ec2/ec2-cloud.js';
export { type IaasNodeOptions } from './iaas/iaas-node.js';
export {
  OpenNebulaCloud,
  type OpenNebulaCloudOptions,
  type OpenNebulaTemplate,
} from './opennebula/opennebula-cloud.js';
