import { Column } from 'typeorm';
import { BYTEWISE } from './column-types';

/** microsoft.graph.importedWindowsAutopilotDeviceIdentityState, stored inline in its device's row. */
export class ImportedWindowsAutopilotDeviceIdentityState {
  /** importedWindowsAutopilotDeviceIdentityImportStatus as its numeric value; NULL here means the whole `state` is null. */
  @Column({ type: 'integer', nullable: true })
  deviceImportStatus!: number | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  deviceRegistrationId!: string | null;

  @Column({ type: 'integer', nullable: true })
  deviceErrorCode!: number | null;

  @Column({ type: 'varchar', nullable: true, collation: BYTEWISE })
  deviceErrorName!: string | null;
}
