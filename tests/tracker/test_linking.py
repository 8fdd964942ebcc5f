"""linking.py (pure): each rule of docs/architecture.md "Linking", and order independence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from runlink.context import normalize
from runlink.tracker import linking


def ctx(**raw):
    return normalize({"dag_id": "etl", **raw})


def links(*contexts, known_uids=()):
    return linking.link_dag("etl", contexts, known_uids)


TS = "2026-11-21T00:00:00+00:00"
RUN = "scheduled__2026-11-21T00:00:00+00:00"


def test_every_spelling_of_the_same_instant_joins_one_run_and_attempt():
    spellings = [
        ctx(execution_date=TS, dag_run_id=RUN, task_id="t", try_number="1", uid="prod"),
        ctx(execution_date="2026-11-21T00:00:00Z", task_id="t", try_number="1", uid="prod"),
        ctx(execution_date="2026-11-21T02:00:00+02:00", task_id="t", try_number=1, uid="prod"),
        ctx(execution_date="20261121T000000", task_id="t", try_number="1", uid="prod"),  # ts_nodash
        ctx(logical_date="2026-11-21T00:00:00.000000Z", task_id="t", try_number="1", uid="prod"),
        ctx(execution_date="2026-11-21", task_id="t", try_number="1", uid="prod"),  # ds
        ctx(dag_run_id=RUN, task_id="t", try_number="1", uid="prod"),
    ]
    result = links(*spellings)
    assert len({link.run.id for link in result.values()}) == 1
    assert len({link.attempt.id for link in result.values()}) == 1
    run = next(iter(result.values())).run
    assert run.logical_date == "2026-11-21T00:00:00.000000Z" and run.run_id == RUN and not run.placeholder
    assert not any(link.ambiguous for link in result.values())


def test_missing_try_number_joins_the_latest_attempt():
    c1 = ctx(execution_date=TS, task_id="t", try_number="1")
    c2 = ctx(execution_date=TS, task_id="t", try_number="2")
    bare = ctx(execution_date=TS, task_id="t")
    result = links(c1, c2, bare)
    assert result[bare].attempt.id == result[c2].attempt.id != result[c1].attempt.id
    assert result[bare].attempt.try_number == 2


def test_missing_try_number_without_any_try_gives_a_latest_placeholder():
    bare = ctx(execution_date=TS, task_id="t")
    attempt = links(bare)[bare].attempt
    assert attempt.placeholder and attempt.try_number is None
    assert attempt.id == linking.task_attempt_pk(attempt.run_pk, "t", -1, None)


def test_missing_uid_matches_the_only_instance():
    with_uid = ctx(execution_date=TS, task_id="t", try_number="1", uid="prod")
    without = ctx(execution_date=TS, task_id="t", try_number="1")
    result = links(with_uid, without)
    assert result[without].run.uid == "prod"
    assert result[without].attempt.id == result[with_uid].attempt.id


def test_missing_uid_matches_an_instance_known_from_dag_definitions():
    without = ctx(execution_date=TS, task_id="t")
    assert links(without, known_uids=["prod"])[without].run.uid == "prod"


def test_missing_uid_matching_runs_of_two_instances_is_flagged_ambiguous_and_kept_apart():
    a = ctx(execution_date=TS, uid="prod")
    b = ctx(execution_date=TS, uid="staging")
    without = ctx(execution_date=TS, task_id="t")
    result = links(a, b, without)
    assert result[without].run.uid is None and result[without].ambiguous
    assert not result[a].ambiguous and not result[b].ambiguous
    assert len({result[a].run.id, result[b].run.id, result[without].run.id}) == 3


def test_missing_uid_joins_the_one_instance_whose_run_matches():
    prod = ctx(execution_date=TS, dag_run_id=RUN, task_id="t", try_number="1", uid="prod")
    staging = ctx(execution_date="2026-11-22T00:00:00Z", task_id="t", try_number="1", uid="staging")
    by_run_id = ctx(dag_run_id=RUN, task_id="t")
    by_date = ctx(execution_date=TS, task_id="t", try_number="1")
    by_day = ctx(execution_date="2026-11-22", task_id="t")
    result = links(prod, staging, by_run_id, by_date, by_day)
    assert result[by_run_id].attempt.id == result[by_date].attempt.id == result[prod].attempt.id
    assert result[by_day].attempt.id == result[staging].attempt.id
    assert not any(link.ambiguous for link in result.values())


def test_a_second_instance_never_splits_what_a_uidless_context_joined():
    prod = ctx(execution_date=TS, dag_run_id=RUN, task_id="t", try_number="1", uid="prod")
    openlineage = ctx(dag_run_id=RUN, task_id="t", try_number="1")
    before = links(prod, openlineage)
    assert before[openlineage].attempt.id == before[prod].attempt.id
    staging = ctx(execution_date="2026-11-23T00:00:00Z", dag_run_id="scheduled__2026-11-23T00:00:00+00:00",
                  task_id="t", try_number="1", uid="staging")
    after = links(prod, openlineage, staging)
    assert after[openlineage] == before[openlineage] and after[prod] == before[prod]


def test_two_instances_with_the_same_run_id_stay_two_runs():
    prod = ctx(execution_date=TS, dag_run_id=RUN, task_id="t", try_number="1", uid="prod")
    staging = ctx(execution_date=TS, dag_run_id=RUN, task_id="t", try_number="1", uid="staging")
    result = links(prod, staging)
    assert result[prod].run.id != result[staging].run.id
    assert {result[prod].run.uid, result[staging].run.uid} == {"prod", "staging"}


def test_an_alias_uid_links_as_its_instance():
    prod = ctx(execution_date=TS, dag_run_id=RUN, task_id="t", try_number="1", uid="airflow-abc")
    databand = ctx(execution_date=TS, task_id="t", try_number="1", uid="5f0c-databand-uuid")
    staging = ctx(execution_date=TS, dag_run_id=RUN, task_id="t", try_number="1", uid="staging")
    without = ctx(execution_date=TS, task_id="t")
    plain = links(prod, databand, staging, without)
    assert plain[databand].run.uid == "5f0c-databand-uuid" and plain[without].ambiguous
    aliased = linking.link_dag("etl", [prod, databand, staging, without], (),
                               {"5f0c-databand-uuid": "airflow-abc"})
    assert aliased[databand] == aliased[prod] and aliased[databand].run.uid == "airflow-abc"
    assert aliased[without].ambiguous  # still two instances (prod, staging) with that run
    assert aliased[staging].run.id != aliased[prod].run.id
    alone = linking.link_dag("etl", [prod, databand, without], (), {"5f0c-databand-uuid": "airflow-abc"})
    assert alone[without].attempt.id == alone[prod].attempt.id and not alone[without].ambiguous


def test_airflow3_run_without_logical_date_is_matched_by_run_id():
    start = ctx(dag_run_id="manual__2026-11-21T10:11:12+00:00", task_id="t", try_number="1")
    spark = ctx(dag_run_id="manual__2026-11-21T10:11:12+00:00", task_id="t")
    other = ctx(dag_run_id="manual__2026-11-21T11:00:00+00:00", task_id="t", try_number="1")
    result = links(start, spark, other)
    assert result[start].attempt.id == result[spark].attempt.id
    assert result[start].run.id != result[other].run.id
    assert result[start].run.canonical_key == "manual__2026-11-21T10:11:12+00:00"


def test_two_run_ids_or_two_dates_never_merge():
    a = ctx(execution_date=TS, dag_run_id="r1")
    b = ctx(execution_date=TS, dag_run_id="r2")
    result = links(a, b)
    assert result[a].run.id != result[b].run.id
    c = ctx(execution_date="2026-11-22T00:00:00Z", dag_run_id="r3")
    d = ctx(dag_run_id="r3", execution_date="2026-11-23T00:00:00Z")
    assert links(c, d)[c].run.id != links(c, d)[d].run.id


def test_date_only_with_several_runs_that_day_is_ambiguous_and_takes_the_earliest():
    early = ctx(execution_date="2026-11-21T01:00:00Z")
    late = ctx(execution_date="2026-11-21T13:00:00Z")
    ds = ctx(execution_date="2026-11-21", task_id="t")
    result = links(early, late, ds)
    assert result[ds].run.id == result[early].run.id and result[ds].ambiguous


def test_date_only_without_a_run_gets_a_day_placeholder_that_a_later_run_absorbs():
    ds = ctx(execution_date="2026-11-21", task_id="t", try_number="1")
    alone = links(ds)[ds]
    assert alone.run.placeholder and alone.run.canonical_key == "day:2026-11-21"
    full = ctx(execution_date=TS, task_id="t", try_number="1")
    together = links(ds, full)
    assert together[ds].attempt.id == together[full].attempt.id and not together[ds].run.placeholder


def test_context_without_task_links_to_the_run_only():
    run_only = ctx(execution_date=TS, dag_run_id=RUN)
    assert links(run_only)[run_only].attempt is None


def test_map_index_separates_attempts():
    a = ctx(execution_date=TS, task_id="t", try_number="1", map_index="0")
    b = ctx(execution_date=TS, task_id="t", try_number="1", map_index="1")
    result = links(a, b)
    assert result[a].attempt.id != result[b].attempt.id and result[a].run.id == result[b].run.id


def test_ids_are_the_documented_uuid5():
    c = ctx(execution_date=TS, task_id="t", try_number="3", uid="prod")
    link = links(c)[c]
    assert link.run.id == linking.dag_run_pk("prod", "etl", "2026-11-21T00:00:00.000000Z")
    assert link.attempt.id == linking.task_attempt_pk(link.run.id, "t", -1, 3)


raw_contexts = st.builds(
    lambda date, run, task, try_, uid: {k: v for k, v in {
        "execution_date": date, "dag_run_id": run, "task_id": task, "try_number": try_, "uid": uid}.items() if v},
    st.sampled_from([None, TS, "2026-11-21", "20261121T000000", "2026-11-22T00:00:00Z", "2026-11-22"]),
    st.sampled_from([None, RUN, "manual__x", "scheduled__2026-11-22T00:00:00+00:00"]),
    st.sampled_from([None, "a", "b"]),
    st.sampled_from([None, "1", "2"]),
    st.sampled_from([None, "prod"]),
)


@given(st.lists(raw_contexts, min_size=1, max_size=10), st.randoms())
def test_links_do_not_depend_on_input_order(raws, rnd):
    contexts = [ctx(**raw) for raw in raws]
    shuffled = list(contexts)
    rnd.shuffle(shuffled)
    assert links(*contexts) == links(*shuffled)


multi_instance_contexts = st.builds(
    lambda date, run, task, try_, uid: {k: v for k, v in {
        "execution_date": date, "dag_run_id": run, "task_id": task, "try_number": try_, "uid": uid}.items() if v},
    st.sampled_from([None, TS, "2026-11-21", "2026-11-22T00:00:00Z", "2026-11-22"]),
    st.sampled_from([None, RUN, "manual__x"]),
    st.sampled_from([None, "a"]),
    st.sampled_from([None, "1", "2"]),
    st.sampled_from([None, "prod", "staging", "old-prod"]),
)


@given(st.lists(multi_instance_contexts, min_size=1, max_size=12), st.sampled_from([(), ("old-prod",)]),
       st.randoms())
def test_links_of_several_instances_aliases_and_uidless_contexts_do_not_depend_on_order(raws, known, rnd):
    contexts = [ctx(**raw) for raw in raws]
    shuffled = list(contexts)
    rnd.shuffle(shuffled)
    aliases = {"old-prod": "prod"}
    result = linking.link_dag("etl", contexts, known, aliases)
    assert result == linking.link_dag("etl", shuffled, known, aliases)
    for context, link in result.items():
        if context.uid is not None:  # a context with a uid is always its (aliased) instance's
            assert link.run.uid == aliases.get(context.uid, context.uid)
            assert not link.ambiguous or context.date_only  # only a date can be ambiguous within one instance
