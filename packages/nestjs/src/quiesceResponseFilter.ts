import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import { QuiesceGraphqlError } from './graphqlOperation.js';
import { type PlatformResponse, sendRendered } from './platform.js';
import { QuiesceResponse } from './quiesceResponse.js';

/**
 * Sends a {@link QuiesceResponse} exactly as core rendered it, on either platform; in a GraphQL
 * context it hands the guard's `GraphQLError` back as the field's result (graphql-js reports a
 * returned error like a thrown one), so Nest does not log every refusal as an unexpected error.
 */
@Catch(QuiesceResponse, QuiesceGraphqlError)
export class QuiesceResponseFilter implements ExceptionFilter<QuiesceResponse | Error> {
  catch(exception: QuiesceResponse | Error, host: ArgumentsHost): unknown {
    const type = host.getType<string>();
    if (type === 'graphql' && exception instanceof QuiesceGraphqlError) return exception;
    if (type !== 'http' || !(exception instanceof QuiesceResponse)) throw exception;
    sendRendered(host.switchToHttp().getResponse<PlatformResponse>(), exception.rendered);
    return undefined;
  }
}
