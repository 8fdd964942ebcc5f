package dev.runlink.spark.context;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.UUID;

/** Deterministic ids (uuid5), equal to python/runlink/ids.py; tests/vectors/ids.json keeps both in step. */
public final class Ids {
    /** uuid5(NAMESPACE_URL, "https://runlink.dev/ns/v1"). */
    public static final UUID NAMESPACE = UUID.fromString("bfa3c501-3bee-5b2e-b83c-f90d5f0f46b6");

    private Ids() {}

    private static final ThreadLocal<MessageDigest> SHA1 = ThreadLocal.withInitial(() -> {
        try {
            return MessageDigest.getInstance("SHA-1");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e); // every JVM has SHA-1
        }
    });

    public static UUID uuid5(UUID namespace, String name) {
        MessageDigest sha1 = SHA1.get();
        sha1.reset();
        ByteBuffer ns = ByteBuffer.allocate(16);
        ns.putLong(namespace.getMostSignificantBits()).putLong(namespace.getLeastSignificantBits());
        sha1.update(ns.array());
        byte[] hash = sha1.digest(name.getBytes(StandardCharsets.UTF_8));
        hash[6] = (byte) ((hash[6] & 0x0f) | 0x50); // version 5
        hash[8] = (byte) ((hash[8] & 0x3f) | 0x80); // RFC 4122 variant
        ByteBuffer bytes = ByteBuffer.wrap(hash, 0, 16);
        return new UUID(bytes.getLong(), bytes.getLong());
    }

    private static String uuid5(String name) {
        return uuid5(NAMESPACE, name).toString();
    }

    /** One id per distinct normalized context (the tracker's contexts.id). */
    public static String contextId(NormalizedContext ctx) {
        return uuid5("ctx:" + ctx.key());
    }

    /** The tracker's id of a Spark application attempt. */
    public static String sparkAppId(String appId, String attemptId) {
        return uuid5("spark-app:" + appId + "|" + (attemptId == null ? "" : attemptId));
    }

    /** An event id that a re-send of the same fact reproduces, so replays dedupe. */
    public static String eventId(String sourceId, String kind, String discriminator) {
        return uuid5("event:" + sourceId + "|" + kind + "|" + discriminator);
    }

    public static String randomEventId() {
        return UUID.randomUUID().toString();
    }
}
