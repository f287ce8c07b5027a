<?php
// Runs the PHP client against the cases the Go test prepares.
//
// Usage: php runner.php <path of Paysidecar.php> verify|calls <input.json>
// Prints one JSON document with the results on stdout.

require $argv[1];

function verifyCases(array $cases): array
{
    $out = [];
    foreach ($cases as $c) {
        $body = base64_decode($c['body_b64'], true);
        try {
            $event = Paysidecar\Webhook::verify($c['secret'], $c['headers'], $body, $c['tolerance'], $c['now']);
            $out[] = ['name' => $c['name'], 'ok' => true, 'event_id' => $event['id']];
        } catch (Paysidecar\WebhookVerificationException $e) {
            $out[] = ['name' => $c['name'], 'ok' => false, 'error' => $e->getMessage()];
        }
    }
    return $out;
}

function failure(callable $call): array
{
    try {
        $call();
    } catch (Paysidecar\ApiException $e) {
        return ['status' => $e->status, 'code' => $e->errorCode, 'field' => $e->field ?? ''];
    }
    return ['status' => 0, 'code' => 'no error raised'];
}

function calls(array $spec): array
{
    $c = new Paysidecar\Client($spec['base_url'], $spec['token'], 10);
    $created = $c->createPayment($spec['payment'], $spec['idempotency_key']);
    $fetched = $c->getPayment($spec['odd_id']);
    $refund = $c->createRefund($created['id'], $spec['refund'], $spec['refund_key']);
    $conflict = failure(function () use ($c, $spec) { $c->createPayment($spec['payment']); });
    $gateway = failure(function () use ($c) { $c->getRefund('re_gateway'); });
    $checkout = $c->createCheckout($spec['checkout'], $spec['checkout_key']);
    $paid = $c->payCheckout($checkout['id'], $spec['pay']);
    $checked = $c->getCheckout($checkout['id']);
    return ['created' => $created, 'fetched' => $fetched, 'refund' => $refund, 'conflict' => $conflict, 'gateway' => $gateway,
        'checkout' => $checkout, 'paid' => $paid, 'checked' => $checked];
}

$data = json_decode(file_get_contents($argv[3]), true);
$result = $argv[2] === 'verify' ? verifyCases($data) : calls($data);
echo json_encode($result, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
