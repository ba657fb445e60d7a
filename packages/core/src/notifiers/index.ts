export { type Announcement, announce, formatUtc } from './announcement.js';
export {
  type CachePurgeNotifierOptions,
  cachePurgeNotifier,
  type PurgeRequest,
} from './cachePurgeNotifier.js';
export { NotifierError, type NotifierRuntimeOptions, type RetryOptions } from './delivery.js';
export {
  type StatuspageNoticeData,
  type StatuspageNotifierOptions,
  statuspageNotifier,
} from './statuspageNotifier.js';
export {
  signWebhook,
  verifyWebhookSignature,
  WEBHOOK_DELIVERY_HEADER,
  WEBHOOK_EVENT_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  type WebhookNotifierOptions,
  type WebhookPayload,
  webhookNotifier,
} from './webhookNotifier.js';
