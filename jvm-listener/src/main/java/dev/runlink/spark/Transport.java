package dev.runlink.spark;

import java.io.IOException;

/** Posts one gzip-compressed JSON batch; connection errors and timeouts are IOExceptions. */
interface Transport {
    Response post(byte[] gzippedBatch) throws IOException;

    final class Response {
        final int status;
        final String body;

        Response(int status, String body) {
            this.status = status;
            this.body = body;
        }
    }
}
