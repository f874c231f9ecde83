/*
 * What the two C files of streamserver.native._native share (issue 17): _native.c defines the
 * module and the depayloaders, assembler.c the receive-side frame Assembler, which calls the
 * depayloaders in C rather than through Python.
 */
#ifndef SCENELINK_NATIVE_H
#define SCENELINK_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* aiortc's depayloaders (_native.c): a new bytes object, or NULL with ValueError set for a
 * malformed payload (as aiortc raises). ``module`` is unused. */
PyObject *depayload_h264(PyObject *module, PyObject *arg);
PyObject *depayload_vp8(PyObject *module, PyObject *arg);

/* NACK bookkeeping, reassembly and receiver statistics for one received stream (assembler.c). */
extern PyTypeObject AssemblerType;

/* Assembler.add(*args) from C, for SrtpReceiver.receive (the same checks and answer). */
PyObject *assembler_add(PyObject *assembler, PyObject *const *args, Py_ssize_t nargs);

/* While the Assembler holds (its ``hold``), keep receive()'s ``answer`` with its arrival time
 * for take_held: 1; 0 when it does not hold; -1 with an exception set. */
int assembler_keep(PyObject *assembler, PyObject *answer, long long arrival_ms);

#endif
