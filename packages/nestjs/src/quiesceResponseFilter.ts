import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import { type PlatformResponse, sendRendered } from './platform.js';
import { QuiesceResponse } from './quiesceResponse.js';

/** Sends a {@link QuiesceResponse} exactly as core rendered it, on either platform. */
@Catch(QuiesceResponse)
export class QuiesceResponseFilter implements ExceptionFilter<QuiesceResponse> {
  catch(exception: QuiesceResponse, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    sendRendered(host.switchToHttp().getResponse<PlatformResponse>(), exception.rendered);
  }
}
