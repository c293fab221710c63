import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { GRAPH_MIN_DATE_MS } from './column-types';

/**
 * microsoft.graph.windowsAutopilotSettings: one per tenant (deviceManagement/windowsAutopilotSettings is a single-valued
 * containment navigation). A tenant that never synced reads as Graph's defaults: 0001-01-01T00:00:00Z, `unknown`.
 */
@Entity({ name: 'windowsAutopilotSettings' })
@Index('UQ_settings_tenant', ['tenantId'], { unique: true })
export class WindowsAutopilotSettings {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 128 })
  tenantId!: string;

  /** Epoch milliseconds, UTC. */
  @Column({ type: 'bigint', default: GRAPH_MIN_DATE_MS })
  lastManualSyncTriggerDateTime!: number;

  /** Epoch milliseconds, UTC. */
  @Column({ type: 'bigint', default: GRAPH_MIN_DATE_MS })
  lastSyncDateTime!: number;

  /** windowsAutopilotSyncStatus as its numeric value (0: unknown). */
  @Column({ type: 'integer', default: 0 })
  syncStatus!: number;

  /** Bumped on every change; the ETag is derived from it. */
  @Column({ type: 'integer', default: 1 })
  version!: number;
}
