import type { IncomingMessage, ServerResponse } from 'node:http';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

let exporter: PrometheusExporter | null = null;

/**
 * Register the OpenTelemetry SDK with a Prometheus reader, once per process, before any engine is
 * created (core takes its meter when the engine is built). The exporter's own server is not
 * started: the demo serves `/metrics` on its port.
 */
export function prometheusMetrics(): (req: IncomingMessage, res: ServerResponse) => void {
  if (!exporter) {
    exporter = new PrometheusExporter({ preventServerStart: true });
    const provider = new MeterProvider({ readers: [exporter] });
    metrics.setGlobalMeterProvider(provider);
  }
  const e = exporter;
  return (req, res) => e.getMetricsRequestHandler(req, res);
}
