import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { BYTEWISE } from './column-types';

/**
 * microsoft.graph.windowsAutopilotDeviceIdentity: a registered Autopilot device. The import worker creates one per
 * imported identity it completes (src/import/import-worker.ts); its serial number is the registry the 806/808 checks
 * read (per tenant, and across tenants). Enums are stored as their numeric values, DateTimeOffsets as epoch ms.
 */
@Entity({ name: 'windowsAutopilotDeviceIdentity' })
@Index('IX_registered_tenant_id', ['tenantId', 'id'])
@Index('IX_registered_tenant_serialNumber', ['tenantId', 'serialNumber'])
@Index('IX_registered_serialNumber', ['serialNumber'])
export class WindowsAutopilotDeviceIdentity {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  /** The `tid` of the tenant it is registered in: every query is scoped by it. */
  @Column({ type: 'varchar', length: 128 })
  tenantId!: string;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  addressableUserName!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  azureActiveDirectoryDeviceId!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  azureAdDeviceId!: string | null;

  @Column({ type: 'bigint' })
  deploymentProfileAssignedDateTime!: number;

  /** windowsAutopilotProfileAssignmentDetailedStatus */
  @Column({ type: 'integer' })
  deploymentProfileAssignmentDetailedStatus!: number;

  /** windowsAutopilotProfileAssignmentStatus */
  @Column({ type: 'integer' })
  deploymentProfileAssignmentStatus!: number;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  deviceAccountPassword!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  deviceAccountUpn!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  deviceFriendlyName!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  displayName!: string | null;

  /** enrollmentState */
  @Column({ type: 'integer' })
  enrollmentState!: number;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  groupTag!: string | null;

  @Column({ type: 'bigint' })
  lastContactedDateTime!: number;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  managedDeviceId!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  manufacturer!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  model!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  productKey!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  purchaseOrderIdentifier!: string | null;

  /** windowsAutopilotDeviceRemediationState */
  @Column({ type: 'integer' })
  remediationState!: number;

  @Column({ type: 'bigint' })
  remediationStateLastModifiedDateTime!: number;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  resourceName!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  serialNumber!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  skuNumber!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  systemFamily!: string | null;

  /** windowsAutopilotUserlessEnrollmentStatus */
  @Column({ type: 'integer' })
  userlessEnrollmentStatus!: number;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  userPrincipalName!: string | null;

  /** Bumped on every change; the ETag is derived from it. */
  @Column({ type: 'integer', default: 1 })
  version!: number;
}
