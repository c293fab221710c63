import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { BINARY, BYTEWISE, NOW_EPOCH_MS } from './column-types';
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
// The import worker's queue: only devices still to process (unknown 0, pending 1), oldest first, across tenants.
@Index('IX_device_import_due', ['storedAt', 'id'], { where: '"stateDeviceImportStatus" IN (0, 1)' })
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

  /**
   * Internal, not in the CSDL: when the row was stored (epoch ms, database clock; 0 for rows older than the column).
   * The import worker processes a device IMPORT_DELAY_MS after it. Inserts leave it to the column's default.
   */
  @Column({ type: 'bigint', default: NOW_EPOCH_MS })
  storedAt!: number;
}
