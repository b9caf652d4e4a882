/**
 * Errors of the Linux renderer (`linux-render.ts`, `linux-nft.ts`), planner (`linux-plan.ts`) and
 * shell (`linux-apply.ts`). Each has a stable `name` and `code`.
 */

/** The desired state is not renderable (a bad value the config reader let through). */
export class LinuxRenderError extends Error {
  override readonly name = 'LinuxRenderError';
  readonly code = 'LINUX_RENDER';
  constructor(
    /** Dotted path of the offending value, e.g. `interfaces[2].trunk`. */
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

/** The kernel holds something in the way that is not ours (a link without the `vce:` alias). */
export class LinuxPlanError extends Error {
  override readonly name = 'LinuxPlanError';
  readonly code = 'LINUX_PLAN';
}

/** A command failed: which one, its exit status and what it printed on stderr. */
export class LinuxApplyError extends Error {
  override readonly name = 'LinuxApplyError';
  readonly code = 'LINUX_APPLY';
  constructor(
    readonly command: readonly string[],
    readonly status: number | string | undefined,
    readonly stderr: string,
  ) {
    super(`${command.join(' ')} failed (${String(status)}): ${stderr.trim()}`);
  }
}
