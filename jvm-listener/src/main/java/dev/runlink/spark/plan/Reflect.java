package dev.runlink.spark.plan;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * By-name access to Spark and Scala members whose signatures differ between Spark 3.5 (Scala 2.12) and 4.x
 * (Scala 2.13): linking against them would fail with a LinkageError on the other version. The plan walk reads
 * everything this way; the listeners read the few event members that differ (e.g. {@code stageIds()}).
 */
public final class Reflect {
    private static final Method MISSING;
    private static final ConcurrentMap<Class<?>, ConcurrentMap<String, Method>> METHODS = new ConcurrentHashMap<>();

    static {
        try {
            MISSING = Object.class.getMethod("hashCode");
        } catch (NoSuchMethodException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private Reflect() {}

    /** The public no-argument method {@code name} of {@code type}, or null. Cached, misses included. */
    static Method method(Class<?> type, String name) {
        ConcurrentMap<String, Method> byName = METHODS.get(type);
        if (byName == null) {
            ConcurrentMap<String, Method> fresh = new ConcurrentHashMap<>();
            byName = METHODS.putIfAbsent(type, fresh);
            if (byName == null) {
                byName = fresh;
            }
        }
        Method m = byName.get(name);
        if (m == null) {
            m = lookup(type, name);
            byName.put(name, m);
        }
        return m == MISSING ? null : m;
    }

    private static Method lookup(Class<?> type, String name) {
        try {
            Method m = type.getMethod(name);
            try {
                m.setAccessible(true); // public method of a non-public (e.g. anonymous) class
            } catch (RuntimeException ignored) {
                // still callable when the declaring class is public
            }
            return m;
        } catch (NoSuchMethodException | SecurityException e) {
            return MISSING;
        }
    }

    static boolean has(Object target, String name) {
        return target != null && method(target.getClass(), name) != null;
    }

    /** target.name(), or null when the member does not exist or throws. */
    public static Object call(Object target, String name) {
        if (target == null) {
            return null;
        }
        Method m = method(target.getClass(), name);
        if (m == null) {
            return null;
        }
        try {
            return m.invoke(target);
        } catch (IllegalAccessException | InvocationTargetException | RuntimeException e) {
            return null;
        }
    }

    /** Like {@link #call} but unwraps a scala.Option. */
    public static Object get(Object target, String name) {
        return option(call(target, name));
    }

    /** target.name(arg) for a one-parameter method taking Object (erased Scala generics, e.g. Map.get), or null. */
    public static Object callWith(Object target, String name, Object arg) {
        if (target == null) {
            return null;
        }
        try {
            return target.getClass().getMethod(name, Object.class).invoke(target, arg);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }

    /** Static no-argument method of a class looked up by name (Scala objects' static forwarders), or null. */
    public static Object callStatic(String className, String name) {
        try {
            Class<?> type = Class.forName(className, true, Reflect.class.getClassLoader());
            Method m = type.getMethod(name);
            return m.invoke(null);
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            return null;
        }
    }

    /** The value of a Scala object's no-argument method, through its companion's MODULE$: for methods such as
     *  SparkContext.getActive that are private[spark], so the class has no static forwarder to call. */
    public static Object callOnObject(String className, String name) {
        try {
            Class<?> module = Class.forName(className + "$", true, Reflect.class.getClassLoader());
            return get(module.getField("MODULE$").get(null), name);
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            return null;
        }
    }

    public static String string(Object target, String name) {
        Object value = get(target, name);
        return value == null ? null : value.toString();
    }

    public static Long number(Object target, String name) {
        Object value = get(target, name);
        return value instanceof Number ? ((Number) value).longValue() : null;
    }

    /** The value of a scala.Option (null for None); any other value as is. */
    public static Object option(Object value) {
        if (value instanceof scala.Option) {
            scala.Option<?> opt = (scala.Option<?>) value;
            return opt.isDefined() ? opt.get() : null;
        }
        return value;
    }

    /** The elements of a Scala collection (2.12 or 2.13), a Java collection or an array, at most {@code cap}. */
    public static List<Object> list(Object collection, int cap) {
        if (collection == null) {
            return Collections.emptyList();
        }
        List<Object> out = new ArrayList<>();
        if (collection instanceof Iterable) {
            for (Object item : (Iterable<?>) collection) {
                if (out.size() >= cap) {
                    break;
                }
                out.add(item);
            }
            return out;
        }
        if (collection instanceof Object[]) {
            for (Object item : (Object[]) collection) {
                if (out.size() >= cap) {
                    break;
                }
                out.add(item);
            }
            return out;
        }
        Object iterator = call(collection, "iterator"); // scala.collection.Iterable in both Scala versions
        if (iterator instanceof scala.collection.Iterator) {
            scala.collection.Iterator<?> it = (scala.collection.Iterator<?>) iterator;
            while (it.hasNext() && out.size() < cap) {
                out.add(it.next());
            }
        }
        return out;
    }
}
