package dev.runlink.spark.delivery;

import java.io.IOException;

/** Posts one gzip-compressed JSON batch; connection errors and timeouts are IOExceptions. */
public interface Transport {
    Response post(byte[] gzippedBatch) throws IOException;

    /** The tracker's answer: its status and the head of its body (a 422 names the bad event there). */
    final class Response {
        public final int status;
        public final String body;

        public Response(int status, String body) {
            this.status = status;
            this.body = body;
        }
    }
}
