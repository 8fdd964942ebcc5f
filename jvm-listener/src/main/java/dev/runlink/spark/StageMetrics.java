package dev.runlink.spark;

import java.util.AbstractMap;
import java.util.AbstractSet;
import java.util.Iterator;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;
import org.apache.spark.executor.TaskMetrics;

/**
 * A stage's aggregated task metrics under the schema's stage_metrics names, as a read-only Map over one
 * long[]: a queued stage event holds 22 numbers in ~200 bytes instead of a map of boxed values (~1.5 KB),
 * which keeps the bounded queue's worst case small. Entries are made only when the sender serializes.
 */
final class StageMetrics extends AbstractMap<String, Object> {
    static final String[] NAMES = {
        "executor_run_time_ms", "executor_cpu_time_ns", "executor_deserialize_time_ms",
        "executor_deserialize_cpu_time_ns", "result_size_bytes", "jvm_gc_time_ms", "result_serialization_time_ms",
        "input_bytes", "input_records", "output_bytes", "output_records", "shuffle_read_bytes",
        "shuffle_read_records", "shuffle_remote_bytes_read", "shuffle_local_bytes_read", "shuffle_fetch_wait_ms",
        "shuffle_write_bytes", "shuffle_write_records", "shuffle_write_time_ns", "memory_spilled_bytes",
        "disk_spilled_bytes", "peak_execution_memory_bytes",
    };

    private final long[] values;

    private StageMetrics(long[] values) {
        this.values = values;
    }

    /** Empty when the stage has no metrics (it never ran). */
    static Map<String, Object> of(TaskMetrics m) {
        if (m == null) {
            return new StageMetrics(null);
        }
        return new StageMetrics(new long[] {
            m.executorRunTime(), m.executorCpuTime(), m.executorDeserializeTime(), m.executorDeserializeCpuTime(),
            m.resultSize(), m.jvmGCTime(), m.resultSerializationTime(),
            m.inputMetrics().bytesRead(), m.inputMetrics().recordsRead(),
            m.outputMetrics().bytesWritten(), m.outputMetrics().recordsWritten(),
            m.shuffleReadMetrics().totalBytesRead(), m.shuffleReadMetrics().recordsRead(),
            m.shuffleReadMetrics().remoteBytesRead(), m.shuffleReadMetrics().localBytesRead(),
            m.shuffleReadMetrics().fetchWaitTime(),
            m.shuffleWriteMetrics().bytesWritten(), m.shuffleWriteMetrics().recordsWritten(),
            m.shuffleWriteMetrics().writeTime(),
            m.memoryBytesSpilled(), m.diskBytesSpilled(), m.peakExecutionMemory(),
        });
    }

    @Override
    public Set<Map.Entry<String, Object>> entrySet() {
        return new AbstractSet<Map.Entry<String, Object>>() {
            @Override
            public Iterator<Map.Entry<String, Object>> iterator() {
                return new Iterator<Map.Entry<String, Object>>() {
                    private int next;

                    @Override
                    public boolean hasNext() {
                        return values != null && next < values.length;
                    }

                    @Override
                    public Map.Entry<String, Object> next() {
                        if (!hasNext()) {
                            throw new NoSuchElementException();
                        }
                        int i = next++;
                        return new SimpleImmutableEntry<String, Object>(NAMES[i], values[i]);
                    }
                };
            }

            @Override
            public int size() {
                return values == null ? 0 : values.length;
            }
        };
    }
}
