import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { BINARY, BYTEWISE } from './column-types';
import { ImportedWindowsAutopilotDeviceIdentityState } from './ImportedWindowsAutopilotDeviceIdentityState';

/**
 * microsoft.graph.importedWindowsAutopilotDeviceIdentity. One table holds both collections: devices contained in an
 * upload (`uploadId` set) and the live deviceManagement/importedWindowsAutopilotDeviceIdentities (`uploadId` NULL).
 */
@Entity({ name: 'importedWindowsAutopilotDeviceIdentity' })
@Index('IX_device_scope_id', ['tenantId', 'uploadId', 'id'])
@Index('IX_device_scope_groupTag', ['tenantId', 'uploadId', 'groupTag'])
@Index('IX_device_serialNumber', ['serialNumber'])
@Index('IX_device_scope_importStatus', ['tenantId', 'uploadId', 'state.deviceImportStatus'])
export class ImportedWindowsAutopilotDeviceIdentity {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 128 })
  tenantId!: string;

  @Column({ type: 'varchar', length: 36, nullable: true })
  uploadId!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  orderIdentifier!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  groupTag!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  serialNumber!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  productKey!: string | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  importId!: string | null;

  @Column({ type: BINARY, nullable: true })
  hardwareIdentifier!: Buffer | null;

  @Column(() => ImportedWindowsAutopilotDeviceIdentityState, { prefix: 'state' })
  state!: ImportedWindowsAutopilotDeviceIdentityState;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  assignedUserPrincipalName!: string | null;

  @Column({ type: 'integer', default: 1 })
  version!: number;
}
