<?php
// Thin client for the paysidecar app API (PHP 7.4+, ext-curl and ext-json).
//
// Create a payment, read it, refund it, and verify the Standard Webhooks
// signature of the events the sidecar delivers. The contract is
// sdk/openapi.yaml; amounts are integer fen.
//
//   require 'Paysidecar.php';
//   $client = new Paysidecar\Client('http://127.0.0.1:8080');
//   $payment = $client->createPayment(['flow' => 'alipay-native', 'out_trade_no' => 'ORDER-1',
//       'amount_fen' => 1999, 'description' => 'T-shirt'], 'ORDER-1');
//   $event = Paysidecar\Webhook::verify($secret, getallheaders(), file_get_contents('php://input'));

namespace Paysidecar;

/** An error answer of the API, with its HTTP status and stable code. */
class ApiException extends \RuntimeException
{
    /** @var int */
    public $status;
    /** @var string */
    public $errorCode;
    /** @var string|null */
    public $field;

    public function __construct(int $status, string $errorCode, string $message, ?string $field = null)
    {
        parent::__construct(sprintf('HTTP %d %s%s: %s', $status, $errorCode, $field ? " ($field)" : '', $message));
        $this->status = $status;
        $this->errorCode = $errorCode;
        $this->field = $field;
    }
}

/** Calls the sidecar's app API on a base URL such as http://127.0.0.1:8080. */
class Client
{
    /** @var string */
    private $baseUrl;
    /** @var string|null */
    private $token;
    /** @var int */
    private $timeout;

    public function __construct(string $baseUrl = 'http://127.0.0.1:8080', ?string $token = null, int $timeoutSeconds = 30)
    {
        $this->baseUrl = rtrim($baseUrl, '/');
        $this->token = $token;
        $this->timeout = $timeoutSeconds;
    }

    /** Places a payment; the answer carries pay_params for the front end. */
    public function createPayment(array $request, ?string $idempotencyKey = null): array
    {
        return $this->call('POST', '/v1/payments', $request, $idempotencyKey);
    }

    /** Returns a payment, refreshed from the upstream when it is not final. */
    public function getPayment(string $paymentId): array
    {
        return $this->call('GET', '/v1/payments/' . rawurlencode($paymentId));
    }

    /** Returns the payment with the application's order number. */
    public function findPayment(string $outTradeNo): array
    {
        return $this->call('GET', '/v1/payments?' . http_build_query(['out_trade_no' => $outTradeNo], '', '&', PHP_QUERY_RFC3986));
    }

    /** Closes an unpaid payment. */
    public function closePayment(string $paymentId, ?string $idempotencyKey = null): array
    {
        return $this->call('POST', '/v1/payments/' . rawurlencode($paymentId) . '/close', new \stdClass(), $idempotencyKey);
    }

    /** Refunds all or part of a succeeded payment. */
    public function createRefund(string $paymentId, array $request, ?string $idempotencyKey = null): array
    {
        return $this->call('POST', '/v1/payments/' . rawurlencode($paymentId) . '/refunds', $request, $idempotencyKey);
    }

    /** Returns a refund. */
    public function getRefund(string $refundId): array
    {
        return $this->call('GET', '/v1/refunds/' . rawurlencode($refundId));
    }

    /** Creates a checkout: a payment offered before the buyer is known, with the links that open the mini-program's paying page. */
    public function createCheckout(array $request, ?string $idempotencyKey = null): array
    {
        return $this->call('POST', '/v1/checkouts', $request, $idempotencyKey);
    }

    /** Returns a checkout and, once it was paid, its payment. */
    public function getCheckout(string $checkoutId): array
    {
        return $this->call('GET', '/v1/checkouts/' . rawurlencode($checkoutId));
    }

    /** Pays a checkout with the buyer's wx.login code; answers the payment with its pay_params. */
    public function payCheckout(string $checkoutId, array $request, ?string $idempotencyKey = null): array
    {
        return $this->call('POST', '/v1/checkouts/' . rawurlencode($checkoutId) . '/pay', $request, $idempotencyKey);
    }

    private function call(string $method, string $path, $body = null, ?string $idempotencyKey = null): array
    {
        $headers = ['Accept: application/json'];
        $ch = curl_init($this->baseUrl . $path);
        curl_setopt($ch, CURLOPT_CUSTOMREQUEST, $method);
        curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
        curl_setopt($ch, CURLOPT_TIMEOUT, $this->timeout);
        if ($body !== null) {
            $headers[] = 'Content-Type: application/json';
            curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($body, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES));
        }
        if ($this->token) {
            $headers[] = 'Authorization: Bearer ' . $this->token;
        }
        if ($idempotencyKey) {
            $headers[] = 'Idempotency-Key: ' . $idempotencyKey;
        }
        curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
        $raw = curl_exec($ch);
        if ($raw === false) {
            $err = curl_error($ch);
            curl_close($ch);
            throw new \RuntimeException("paysidecar: $method $path: $err");
        }
        $status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
        curl_close($ch);
        $decoded = json_decode($raw, true);
        if ($status < 200 || $status > 299) {
            $detail = is_array($decoded) && isset($decoded['error']['code']) ? $decoded['error'] : null;
            if ($detail === null) {
                throw new ApiException($status, "http_$status", trim($raw));
            }
            throw new ApiException($status, $detail['code'], $detail['message'] ?? '', $detail['field'] ?? null);
        }
        if (!is_array($decoded)) {
            throw new \RuntimeException("paysidecar: $method $path: the answer is not a JSON object");
        }
        return $decoded;
    }
}

/** A webhook delivery that must be refused (answer 4xx, do not process it). */
class WebhookVerificationException extends \RuntimeException
{
}

/** Verifies Standard Webhooks deliveries from the sidecar. */
class Webhook
{
    public const DEFAULT_TOLERANCE_SECONDS = 300;

    /**
     * Verifies a delivery and returns the parsed event.
     *
     * $secret is the webhook secret ("whsec_" + base64 of the key, or raw key
     * text); $headers maps header names (any case) to values, as
     * getallheaders() returns; $body is the raw request body exactly as
     * received. Throws WebhookVerificationException when a header is missing,
     * the timestamp is more than $tolerance seconds from now, or no v1
     * signature matches.
     */
    public static function verify(string $secret, array $headers, string $body, int $tolerance = self::DEFAULT_TOLERANCE_SECONDS, ?int $now = null): array
    {
        $key = self::secretKey($secret);
        $lower = array_change_key_case($headers, CASE_LOWER);
        $id = $lower['webhook-id'] ?? '';
        $timestamp = $lower['webhook-timestamp'] ?? '';
        $signatures = $lower['webhook-signature'] ?? '';
        if ($id === '' || $timestamp === '' || $signatures === '') {
            throw new WebhookVerificationException('missing webhook-id, webhook-timestamp or webhook-signature');
        }
        if (!ctype_digit($timestamp)) {
            throw new WebhookVerificationException('webhook-timestamp is not unix seconds');
        }
        $current = $now ?? time();
        if (abs($current - (int) $timestamp) > $tolerance) {
            throw new WebhookVerificationException('webhook-timestamp is outside the tolerance');
        }
        $expected = base64_encode(hash_hmac('sha256', $id . '.' . $timestamp . '.' . $body, $key, true));
        foreach (preg_split('/\s+/', trim($signatures)) as $candidate) {
            $parts = explode(',', $candidate, 2);
            if (count($parts) !== 2 || $parts[0] !== 'v1') {
                continue;
            }
            if (hash_equals($expected, $parts[1])) {
                $event = json_decode($body, true);
                if (!is_array($event)) {
                    throw new WebhookVerificationException('the body is not a JSON object');
                }
                return $event;
            }
        }
        throw new WebhookVerificationException('no matching signature');
    }

    private static function secretKey(string $secret): string
    {
        if (strpos($secret, 'whsec_') === 0) {
            $key = base64_decode(substr($secret, strlen('whsec_')), true);
            if ($key === false) {
                throw new WebhookVerificationException('the webhook secret is not whsec_ + base64');
            }
            return $key;
        }
        return $secret;
    }
}
