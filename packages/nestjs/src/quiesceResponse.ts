import { HttpException } from '@nestjs/common';
import type { RenderedResponse } from '@quiesce/core/http';

/**
 * Thrown by the guard to answer a request itself (a refusal, a queued or dropped write). Nest's
 * own exception filter already sends the right status and body from it, and the guard has set the
 * headers; {@link QuiesceResponseFilter}, registered by `QuiesceModule`, sends the response byte for
 * byte as core rendered it (the HTML page for browsers included).
 */
export class QuiesceResponse extends HttpException {
  readonly rendered: RenderedResponse;

  constructor(rendered: RenderedResponse, body: object) {
    super(body as Record<string, unknown>, rendered.status);
    this.rendered = rendered;
  }

  /**
   * A response, not a failure: no stack trace is captured (that would be most of a refusal's
   * cost, and refusals come by the thousand during a window).
   */
  static create(rendered: RenderedResponse, body: object): QuiesceResponse {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new QuiesceResponse(rendered, body);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}
