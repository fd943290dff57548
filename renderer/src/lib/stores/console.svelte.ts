// The console's state in the renderer: the API, the connection, what is selected, and the
// notices shown to the user. Components read it; the services own the logic.
import type { ConsoleInfo, Id, SiteSummary, SiteView } from '../../../../main/api/contract.ts';
import { type ConnectionState, connectBridge, createApi } from '../api.ts';

const connected = connectBridge();
export const api = createApi(connected.bridge);
export const bridge = connected.bridge;

export interface Notice {
  id: number;
  kind: 'error' | 'info';
  text: string;
}

const noticesMax = 5;

class ConsoleStore {
  info = $state<ConsoleInfo | null>(null);
  connection = $state<ConnectionState>(connected.socket ? 'connecting' : 'open');
  sites = $state<SiteSummary[]>([]);
  siteId = $state<Id | null>(null);
  site = $state<SiteView | null>(null);
  clusterId = $state<Id | null>(null);
  notices = $state<Notice[]>([]);
  tasksOpen = $state(false);
  private nextNotice = 1;

  constructor() {
    connected.socket?.onState((state) => {
      this.connection = state;
      if (state === 'open') void this.refresh();
    });
    if (!connected.socket) void this.refresh();
  }

  notify(kind: Notice['kind'], text: string): void {
    const id = this.nextNotice++;
    this.notices = [...this.notices, { id, kind, text }].slice(-noticesMax);
    if (kind === 'info') setTimeout(() => this.dismiss(id), 6000);
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((notice) => notice.id !== id);
  }

  /** Runs a call, turning its error into a notice; returns undefined when it failed. */
  async attempt<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
    try {
      return await work();
    } catch (error) {
      this.notify('error', `${what}: ${(error as Error).message}`);
      return undefined;
    }
  }

  async refresh(): Promise<void> {
    const info = await this.attempt('console', () => api.consoleInfo({}));
    if (info) this.info = info;
    const sites = await this.attempt('sites', () => api.listSites({}));
    if (sites) this.sites = sites;
    if (this.siteId !== null) await this.loadSite(this.siteId);
  }

  async loadSite(siteId: Id): Promise<void> {
    const site = await this.attempt('site', () => api.getSite({ siteId }));
    if (!site) return;
    this.siteId = siteId;
    this.site = site;
    if (this.clusterId !== null && !site.clusters.some((cluster) => cluster.id === this.clusterId))
      this.clusterId = null;
    if (this.clusterId === null && site.clusters.length > 0) this.clusterId = site.clusters[0]?.id ?? null;
  }

  selectSite(siteId: Id): void {
    this.clusterId = null;
    void this.loadSite(siteId);
  }

  get cluster() {
    return this.site?.clusters.find((cluster) => cluster.id === this.clusterId) ?? null;
  }
}

export const consoleStore = new ConsoleStore();
