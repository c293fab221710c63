import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload */
@Entity({ name: 'importedWindowsAutopilotDeviceIdentityUpload' })
@Index('IX_upload_tenant_id', ['tenantId', 'id'])
@Index('IX_upload_tenant_created', ['tenantId', 'createdDateTimeUtc'])
export class ImportedWindowsAutopilotDeviceIdentityUpload {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  /** The `tid` of the token that created it: every query is scoped by it. */
  @Column({ type: 'varchar', length: 128 })
  tenantId!: string;

  /** Epoch milliseconds (whole seconds), UTC. */
  @Column({ type: 'bigint' })
  createdDateTimeUtc!: number;

  /** importedWindowsAutopilotDeviceIdentityUploadStatus as its numeric value, kept in step with the devices. */
  @Column({ type: 'integer', default: 0 })
  status!: number;

  /** Bumped on every change; the ETag is derived from it. */
  @Column({ type: 'integer', default: 1 })
  version!: number;
}
