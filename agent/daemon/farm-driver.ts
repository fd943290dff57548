// A farm module's automaton: the farm/light automaton (FarmDriver) plus when the load-balanced
// traffic opens and closes (reference 3.3): opened before start_both (when the module enters UP,
// before its scripts run), closed after stop_both (when it leaves UP). With scriptcontrol on the
// scripts do both (`hakit vip traffic`); the driver only closes what is still open after UP.
// The open is asynchronous (nft, ip): the actions that follow it in the same step are handed over
// with it, to be carried out once the traffic is open.
import type { CoreAction } from '../core/job.ts';
import type { MaxloopState } from '../core/maxloop.ts';
import type { FarmDriver } from './automaton-driver.ts';
import {
  type AutomatonDriver,
  type DriverEvent,
  type DriverResult,
  type DriverView,
  farmVerbs,
} from './automaton-driver.ts';

export type FarmTrafficAction =
  | { type: 'farmTraffic'; open: true; then: CoreAction[] }
  | {
      type: 'farmTraffic';
      open: false;
      then: [];
      /** scriptcontrol="on": the scripts should have closed it already; this only makes sure. */
      leftToScripts?: true;
    };

export class FarmModuleDriver implements AutomatonDriver<FarmTrafficAction> {
  readonly verbs = farmVerbs;
  private trafficOpen = false;

  constructor(
    private readonly inner: FarmDriver,
    private readonly scriptControl: boolean,
  ) {}

  view(): DriverView {
    return this.inner.view();
  }

  step(event: DriverEvent): DriverResult<FarmTrafficAction> {
    const result = this.inner.step(event);
    const leftUp =
      event.type === 'scriptDone' && event.script === 'stop_both' && this.inner.view().state !== 'UP';
    if (this.scriptControl) {
      // The scripts open and close the traffic (SETGROUPS). A node whose traffic is still open
      // once it left UP would take connections for an application that is stopped: it is
      // closed then (nothing happens when the stop script closed it, as it should).
      const reachedStop = result.actions.some((action) => action.type === 'state' && action.state === 'STOP');
      if (!leftUp && !reachedStop) return result;
      return {
        ...result,
        actions: [{ type: 'farmTraffic', open: false, then: [], leftToScripts: true }, ...result.actions],
      };
    }
    const actions: (CoreAction | FarmTrafficAction)[] = [];
    if (leftUp && this.trafficOpen) {
      this.trafficOpen = false;
      actions.push({ type: 'farmTraffic', open: false, then: [] });
    }
    for (let index = 0; index < result.actions.length; index += 1) {
      const action = result.actions[index];
      if (action === undefined) continue;
      if (action.type === 'state' && action.state === 'UP' && !this.trafficOpen) {
        this.trafficOpen = true;
        actions.push({ type: 'farmTraffic', open: true, then: result.actions.slice(index) });
        return { ...result, actions };
      }
      if (action.type === 'state' && action.state === 'STOP' && this.trafficOpen) {
        // Forced stops and modules without scripts: nothing ran stop_both, close on STOP.
        this.trafficOpen = false;
        actions.push({ type: 'farmTraffic', open: false, then: [] });
      }
      actions.push(action);
    }
    return { ...result, actions };
  }

  setMaxloop(maxloop: MaxloopState): void {
    this.inner.setMaxloop(maxloop);
  }

  restore(saved: { maxloop: MaxloopState; lastFailure: string | null }): void {
    this.inner.restore(saved);
  }

  assumeRunning(): void {
    this.inner.assumeRunning();
    // After a daemon crash the filter and VIPs may still be in place: the recovery stop closes them.
    this.trafficOpen = true;
  }
}
