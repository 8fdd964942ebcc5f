package dev.runlink.spark;

/**
 * Counts of non-negative longs in log-spaced buckets, for a stage's task quantiles with memory that does not grow
 * with the number of tasks.
 *
 * <p>Values below 16 have a bucket each (exact); above, each power of two is cut into 16 equal buckets, so a bucket
 * {@code [L, L + w)} has {@code w <= L / 16}. A quantile is the nearest-rank task's bucket, reported as the bucket's
 * midpoint clamped to the exact min and max: it is within {@code w / 2 <= L / 32} of that task's value, a relative
 * error of at most {@link #RELATIVE_ERROR} (3.125%), whatever the distribution and the number of tasks. Min and max
 * are exact.
 *
 * <p>Why not a bounded reservoir: a sample's quantiles carry only a probabilistic bound, miss the single hot task
 * that skew is about, and need a random source and a sort at the end; this is O(1) per task with no allocation
 * once grown. Memory: the count array grows to the highest bucket seen (at most {@link #MAX_BUCKETS} ints,
 * 3.8 KB, for values near 2^63; task durations in ms stay under 260 buckets).
 */
final class LogHistogram {
    static final int SUB_BITS = 4;
    static final int SUB = 1 << SUB_BITS;
    static final int MAX_BUCKETS = SUB + (63 - SUB_BITS) * SUB;
    static final double RELATIVE_ERROR = 1.0 / (2 * SUB);

    private int[] counts = new int[SUB];
    private long count;
    private long min = Long.MAX_VALUE;
    private long max = Long.MIN_VALUE;

    void add(long value) {
        long v = value < 0 ? 0 : value;
        int i = index(v);
        if (i >= counts.length) {
            int[] grown = new int[Math.min(MAX_BUCKETS, Math.max(i + 1, counts.length * 2))];
            System.arraycopy(counts, 0, grown, 0, counts.length);
            counts = grown;
        }
        counts[i]++;
        count++;
        if (v < min) {
            min = v;
        }
        if (v > max) {
            max = v;
        }
    }

    static int index(long v) {
        if (v < SUB) {
            return (int) v;
        }
        int exponent = 63 - Long.numberOfLeadingZeros(v);
        int sub = (int) (v >>> (exponent - SUB_BITS)) & (SUB - 1);
        return SUB + (exponent - SUB_BITS) * SUB + sub;
    }

    static long lower(int index) {
        if (index < SUB) {
            return index;
        }
        int exponent = (index - SUB) / SUB + SUB_BITS;
        long sub = (index - SUB) % SUB;
        return (1L << exponent) + (sub << (exponent - SUB_BITS));
    }

    static long width(int index) {
        return index < SUB ? 1 : 1L << ((index - SUB) / SUB);
    }

    long count() {
        return count;
    }

    long min() {
        return count == 0 ? 0 : min;
    }

    long max() {
        return count == 0 ? 0 : max;
    }

    /** The nearest-rank {@code q} quantile (0 < q <= 1), within {@link #RELATIVE_ERROR}; 0 when empty. */
    long quantile(double q) {
        if (count == 0) {
            return 0;
        }
        long rank = Math.max(1, (long) Math.ceil(q * count));
        long seen = 0;
        for (int i = 0; i < counts.length; i++) {
            seen += counts[i];
            if (seen >= rank) {
                long mid = i < SUB ? i : lower(i) + width(i) / 2;
                return Math.max(min, Math.min(max, mid));
            }
        }
        return max;
    }

    /** Heap held by the counts (for the memory figures). */
    int buckets() {
        return counts.length;
    }
}
