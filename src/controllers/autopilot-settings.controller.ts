import * as Edm from '@odata/server/lib/edm';
import * as odata from '@odata/server/lib/odata';
import { member } from '../autopilot/registered-device';
import { ScopedTable, Stored } from '../db/scoped-table';
import { EntityRecord } from '../odata/binding';
import { EntitySetController, NewEntity, SetScope } from '../odata/entity-set.controller';
import { ODataError } from '../odata/errors';
import { nameBasedId } from '../odata/ids';
import { model } from '../odata/model';
import { parseActionParameters } from '../odata/payload';
import { ODataRequest, Reply } from '../odata/request';
import { entityReply, notModified } from '../odata/respond';
import { GRAPH_MIN_DATE_MS } from '../../entities/column-types';

export interface SyncTiming {
  /** SYNC_MIN_INTERVAL_S: a sync within this long of the previous one is refused with 429 (Graph: 10 minutes). */
  minIntervalMs: number;
  /** SYNC_DURATION_MS: how long a sync runs (`inProgress`, 409 to another sync) before it reads `completed`. */
  durationMs: number;
}

/**
 * deviceManagement/windowsAutopilotSettings: one per tenant, created on first access, its properties server-set.
 * `sync` is the Autopilot sync: 204, 409 while one runs, 429 within the minimum interval of the last one. Its state
 * lives in the tenant's row, so every instance on one database enforces the same rule; a running sync completes
 * when read after its duration (no timer to lose on a restart).
 */
export class AutopilotSettingsController extends EntitySetController {
  constructor(
    table: ScopedTable,
    private readonly timing: SyncTiming,
  ) {
    super(table);
  }

  /** The tenant's settings id (created on first access). */
  ensure(tenantId: string): Promise<string> {
    return this.ensureMember({ columns: { tenantId } }, nameBasedId(`windowsAutopilotSettings:${tenantId}`), this.newEntity().record);
  }

  protected override writable(): string[] {
    return [];
  }

  protected override newEntity(): NewEntity {
    return { record: { lastSyncDateTime: GRAPH_MIN_DATE_MS, lastManualSyncTriggerDateTime: GRAPH_MIN_DATE_MS, syncStatus: member('windowsAutopilotSyncStatus', 'unknown') } };
  }

  /** The record as of `now`: a sync past its duration has completed. */
  private settled(record: EntityRecord, now: number): EntityRecord | undefined {
    const started = record.lastManualSyncTriggerDateTime as number;
    if (record.syncStatus !== member('windowsAutopilotSyncStatus', 'inProgress') || now < started + this.timing.durationMs) return undefined;
    return { ...record, syncStatus: member('windowsAutopilotSyncStatus', 'completed'), lastSyncDateTime: started + this.timing.durationMs };
  }

  /** Reads the settings, writing the completion of a finished sync first. */
  private async current(scope: SetScope, key: string): Promise<Stored> {
    for (;;) {
      const stored = await this.db.read((m) => this.table.findOne(m, scope, key));
      if (!stored) throw this.notFound(key);
      const next = this.settled(stored.record, Date.now());
      if (!next) return stored;
      const version = await this.db.writeOne((m) => this.table.update(m, scope, key, stored.version, next, stored.record));
      if (version !== undefined) return { id: key, version, record: next };
    }
  }

  @odata.GET
  override async getByKey(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.key key: string): Promise<Reply> {
    const stored = await this.current(scope, key);
    return notModified(ctx, stored) ?? entityReply(ctx, this.type, stored, ctx.target.contextPath);
  }

  /** Starts an Autopilot sync: 204; 409 while one runs; 429 with Retry-After within the minimum interval. */
  @Edm.Action
  async sync(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.key key: string): Promise<Reply> {
    parseActionParameters(model().operations.find((op) => op.name === 'sync')!, ctx.body);
    await this.current(scope, key);
    await this.db.write(async (m) => {
      const stored = await this.table.findOne(m, scope, key, true);
      if (!stored) throw this.notFound(key);
      const now = Date.now();
      const record = this.settled(stored.record, now) ?? stored.record;
      if (record.syncStatus === member('windowsAutopilotSyncStatus', 'inProgress')) {
        throw new ODataError('Conflict', 'An Autopilot sync is already in progress.');
      }
      const wait = (record.lastManualSyncTriggerDateTime as number) + this.timing.minIntervalMs - now;
      if (wait > 0) {
        throw new ODataError('TooManyRequests', `An Autopilot sync can run once every ${Math.round(this.timing.minIntervalMs / 1000)} s; retry later.`).withHeader('Retry-After', String(Math.ceil(wait / 1000)));
      }
      const started = { ...record, syncStatus: member('windowsAutopilotSyncStatus', 'inProgress'), lastManualSyncTriggerDateTime: now };
      const next = this.settled(started, now) ?? started;
      await this.table.update(m, scope, key, stored.version, next, stored.record);
    });
    return { status: 204 };
  }
}
